# SPDX-License-Identifier: MIT
# Installation (headers, static + shared library, pkg-config, CMake package,
# programs, man pages) and the Debian packages CPack makes from it:
#   libiomux0     the shared library
#   libiomux-dev  headers, static library, pkg-config and CMake files
#   iomux-tools   echod, echo-client, echo-bench and their man pages
# The version has one source: project(VERSION) in the top CMakeLists.txt.
include(CMakePackageConfigHelpers)

install(TARGETS iomux_shared EXPORT iomuxTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT lib NAMELINK_COMPONENT dev)
install(TARGETS iomux EXPORT iomuxTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/iomux
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev FILES_MATCHING PATTERN "*.h")

set(IOMUX_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/iomux)
install(EXPORT iomuxTargets NAMESPACE iomux:: DESTINATION ${IOMUX_CMAKE_DIR} COMPONENT dev)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/iomuxConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/iomuxConfig.cmake
                              INSTALL_DESTINATION ${IOMUX_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/iomuxConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/iomuxConfig.cmake ${PROJECT_BINARY_DIR}/iomuxConfigVersion.cmake
        DESTINATION ${IOMUX_CMAKE_DIR} COMPONENT dev)
# Relocatable: the prefix is found from where the .pc file lies, so a copy
# installed with `cmake --install --prefix DIR` works as well as /usr.
# liburing by name in Libs.private, not Requires.private: liburing-dev does
# ship liburing.pc, but pkg-config resolves Requires.private even for
# --cflags, so every user would need it, while only a static link does.
set(IOMUX_PC_LIBS_PRIVATE "")
if(IOMUX_HAVE_URING)
  set(IOMUX_PC_LIBS_PRIVATE "-luring")
endif()
file(RELATIVE_PATH IOMUX_PC_TO_PREFIX
     "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
configure_file(${PROJECT_SOURCE_DIR}/cmake/iomux.pc.in ${PROJECT_BINARY_DIR}/iomux.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/iomux.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

foreach(tool echod echo-client echo-bench)
  if(TARGET ${tool})
    install(TARGETS ${tool} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT tools)
  endif()
endforeach()
# Man pages are roff with the version filled in here (man/NAME.SECTION.in).
file(GLOB IOMUX_MAN_SOURCES ${PROJECT_SOURCE_DIR}/man/*.in)
foreach(source ${IOMUX_MAN_SOURCES})
  get_filename_component(page ${source} NAME_WLE)
  configure_file(${source} ${PROJECT_BINARY_DIR}/man/${page} @ONLY)
  string(REGEX MATCH "[0-9]$" section ${page})
  if(section STREQUAL "1")
    install(FILES ${PROJECT_BINARY_DIR}/man/${page} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1
            COMPONENT tools)
  else()
    install(FILES ${PROJECT_BINARY_DIR}/man/${page}
            DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section} COMPONENT dev)
  endif()
endforeach()

set(CPACK_PACKAGE_NAME iomux)
set(CPACK_PACKAGE_VENDOR "The iomux authors")
set(CPACK_PACKAGE_CONTACT "The iomux authors <iomux@localhost>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Event loop library (select, poll, epoll) and echo tools")
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/packages)
set(CPACK_GENERATOR DEB)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL lib dev tools)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_LIB_PACKAGE_NAME libiomux${PROJECT_VERSION_MAJOR})
set(CPACK_DEBIAN_LIB_DESCRIPTION "iomux event loop library (shared library)")
set(CPACK_DEBIAN_DEV_PACKAGE_NAME libiomux-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
    "libiomux${PROJECT_VERSION_MAJOR} (= ${PROJECT_VERSION})")
if(IOMUX_HAVE_URING) # libiomux.a needs liburing at link time (-luring)
  string(APPEND CPACK_DEBIAN_DEV_PACKAGE_DEPENDS ", liburing-dev")
endif()
set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME iomux-tools)
set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION net)
set(CPACK_COMPONENT_LIB_DESCRIPTION "iomux event loop library (shared library)")
set(CPACK_COMPONENT_DEV_DESCRIPTION
    "iomux event loop library: headers, static library, pkg-config and CMake files")
set(CPACK_COMPONENT_TOOLS_DESCRIPTION
    "echod (RFC 862 echo server), echo-client and echo-bench, built on iomux")
include(CPack)
