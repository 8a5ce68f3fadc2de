# SPDX-License-Identifier: MIT
# Allocation-failure sweep of echod that works in the sanitizer build too,
# tests/echod_alloc_sweep.py:
#   reliability.alloc_sweep.<mode>  fail echod's allocation N for N = 1, 2,
#       ... through start-up, serving and shutdown: a clean exit 1 with one
#       line, or serve and exit 0; never a crash, hang or (under ASan) leak.
#       <mode>: each backend, and engine-uring where it is built (its
#       liburing comes with echod's LINK_LIBRARIES below)
#   reliability.alloc_sweep.faults.<mode>  the same with a fault listener
#
# echod_alloc_wrap is echod rebuilt from the echod target's own sources,
# include directories and definitions (so that a source added to echod is
# picked up here), linked with the static libiomux and with the linker's
# --wrap, so that every allocation echod and libiomux make goes through the
# counting allocator in alloc_wrap.c and on to the real one (the sanitizer
# runtime's in an ASan build: LeakSanitizer checks every failure path). An
# LD_PRELOAD shim cannot do that under ASan (reliability.malloc_sweep).
if(NOT TARGET echod)
  message(STATUS "echod missing: the allocation sweep is not registered")
  return()
endif()

get_target_property(alloc_sweep_srcs echod SOURCES)
get_target_property(alloc_sweep_dir echod SOURCE_DIR)
set(alloc_sweep_sources "")
foreach(alloc_sweep_src ${alloc_sweep_srcs})
  if(IS_ABSOLUTE "${alloc_sweep_src}" OR alloc_sweep_src MATCHES "^\\$<")
    list(APPEND alloc_sweep_sources "${alloc_sweep_src}")
  else()
    list(APPEND alloc_sweep_sources "${alloc_sweep_dir}/${alloc_sweep_src}")
  endif()
endforeach()

add_executable(echod_alloc_wrap ${alloc_sweep_sources} ${CMAKE_CURRENT_LIST_DIR}/alloc_wrap.c)
foreach(alloc_sweep_prop INCLUDE_DIRECTORIES COMPILE_DEFINITIONS COMPILE_OPTIONS LINK_OPTIONS)
  get_target_property(alloc_sweep_value echod ${alloc_sweep_prop})
  if(alloc_sweep_value)
    set_property(TARGET echod_alloc_wrap PROPERTY ${alloc_sweep_prop} "${alloc_sweep_value}")
  endif()
endforeach()
# The libraries echod links, with libiomux always the static one: --wrap
# only reaches the objects of this link, not a shared library's.
get_target_property(alloc_sweep_libs echod LINK_LIBRARIES)
if(NOT alloc_sweep_libs)
  set(alloc_sweep_libs "")
endif()
list(TRANSFORM alloc_sweep_libs REPLACE "^iomux_shared$" "iomux")
list(APPEND alloc_sweep_libs iomux)
list(REMOVE_DUPLICATES alloc_sweep_libs)
target_link_libraries(echod_alloc_wrap PRIVATE ${alloc_sweep_libs})
target_link_options(
  echod_alloc_wrap PRIVATE
  "LINKER:--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=reallocarray,--wrap=free"
  "LINKER:--wrap=strdup,--wrap=strndup,--wrap=posix_memalign,--wrap=aligned_alloc")

find_package(Python3 COMPONENTS Interpreter)
if(NOT Python3_Interpreter_FOUND)
  message(STATUS "python3 missing: the allocation sweep is not registered")
  return()
endif()
foreach(alloc_sweep_mode ${IOMUX_ECHOD_MODES} ${IOMUX_ECHOD_W2_MODES})
  add_test(NAME reliability.alloc_sweep.${alloc_sweep_mode}
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/echod_alloc_sweep.py
                   --echod $<TARGET_FILE:echod_alloc_wrap> ${alloc_sweep_mode})
  set_tests_properties(reliability.alloc_sweep.${alloc_sweep_mode}
                       PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
endforeach()
# The same through a fault listener (delay=1), on the first backend and the io_uring engine
# (whose fault listeners the readiness engine beside it serves): a failed admission there
# closes the socket once and gives its --max-conns-per-ip slot back once.
list(GET IOMUX_ECHOD_MODES 0 alloc_sweep_first)
foreach(alloc_sweep_mode ${alloc_sweep_first} engine-uring)
  if(NOT alloc_sweep_mode IN_LIST IOMUX_ECHOD_MODES)
    continue()
  endif()
  add_test(NAME reliability.alloc_sweep.faults.${alloc_sweep_mode}
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/echod_alloc_sweep.py
                   --echod $<TARGET_FILE:echod_alloc_wrap> --faults delay=1 ${alloc_sweep_mode})
  set_tests_properties(reliability.alloc_sweep.faults.${alloc_sweep_mode}
                       PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
endforeach()
