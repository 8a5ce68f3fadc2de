# SPDX-License-Identifier: MIT
# Reference echo servers for the comparison in `make bench`: a
# lean hand-written epoll server, and idiomatic servers on libuv, libev and
# libevent 2.1. A peer whose library is missing is skipped with a message,
# so the build (and CI) stays green without the -dev packages.
set(peer_dir ${CMAKE_CURRENT_LIST_DIR}/peers)

if(IOMUX_HAVE_EPOLL)
  add_executable(peer_lean_epoll ${peer_dir}/lean_epoll.c)
else()
  message(STATUS "bench peer lean_epoll skipped: no sys/epoll.h")
endif()

find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(LIBUV QUIET IMPORTED_TARGET libuv)
  pkg_check_modules(LIBEVENT QUIET IMPORTED_TARGET libevent)
endif()

if(LIBUV_FOUND)
  add_executable(peer_uv ${peer_dir}/uv_echo.c)
  target_link_libraries(peer_uv PRIVATE PkgConfig::LIBUV)
else()
  message(STATUS "bench peer uv_echo skipped: libuv not found (apt-get install libuv1-dev)")
endif()

if(LIBEVENT_FOUND)
  add_executable(peer_event ${peer_dir}/event_echo.c)
  target_link_libraries(peer_event PRIVATE PkgConfig::LIBEVENT)
else()
  message(STATUS "bench peer event_echo skipped: libevent not found (apt-get install libevent-dev)")
endif()

# Debian's libev-dev ships no pkg-config file: look for the header and
# the library directly.
find_path(LIBEV_INCLUDE_DIR ev.h PATH_SUFFIXES libev)
find_library(LIBEV_LIBRARY ev)
if(LIBEV_INCLUDE_DIR AND LIBEV_LIBRARY)
  add_executable(peer_ev ${peer_dir}/ev_echo.c)
  target_include_directories(peer_ev SYSTEM PRIVATE ${LIBEV_INCLUDE_DIR})
  target_link_libraries(peer_ev PRIVATE ${LIBEV_LIBRARY})
else()
  message(STATUS "bench peer ev_echo skipped: libev not found (apt-get install libev-dev)")
endif()
