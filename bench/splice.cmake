# SPDX-License-Identifier: MIT
# Echo through user space (recv/send) vs splice through a pipe, readiness
# style and IORING_OP_SPLICE (issue 28; docs/splice.md). Run by hand, never
# by ctest.
add_executable(splice_echo ${CMAKE_CURRENT_LIST_DIR}/splice_echo.c)
if(IOMUX_HAVE_URING)
  target_compile_definitions(splice_echo PRIVATE SPLICE_ECHO_URING=1)
  target_link_libraries(splice_echo PRIVATE iomux::liburing)
endif()
