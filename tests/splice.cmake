# SPDX-License-Identifier: MIT
# echod --splice (issue 28, docs/splice.md), tests/splice_e2e.py:
#   splice.<backend>  bytes spliced and counted, auto's threshold, off and
#                     --trace, pipe() failing with EMFILE (connections copy),
#                     resets mid-splice, never-readers holding no pipe,
#                     --idle-timeout seeing splices, half-close of 10 MiB
# The echo, reliability and budget areas run as well with --splice on
# (their <backend>-splice modes, IOMUX_SPLICE_MODES in tests/CMakeLists.txt).
# The pipe pool (apps/echod/splice_pool.c) alone: bound, lending, EMFILE.
if(CMAKE_SYSTEM_NAME STREQUAL "Linux" AND TARGET echod)
  iomux_test(test_splice_pool SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_splice_pool.c
             ${PROJECT_SOURCE_DIR}/apps/echod/splice_pool.c LIBS echod_core TIMEOUT 60)
endif()
find_package(Python3 COMPONENTS Interpreter)
if(NOT Python3_Interpreter_FOUND OR NOT TARGET echod OR NOT IOMUX_SPLICE_MODES)
  return()
endif()
list(GET IOMUX_BACKENDS 0 splice_backend)
set(splice_areas ${splice_backend})
if(IOMUX_SPLICE_URING_MODE)
  list(APPEND splice_areas engine-uring) # the io_uring engine's IORING_OP_SPLICE
endif()
foreach(mode ${splice_areas})
  add_test(NAME splice.${mode}
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/splice_e2e.py
                   $<TARGET_FILE:echod> ${mode})
  # RSS is compared within the test: alone, as the budget tests.
  set_tests_properties(splice.${mode} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120 RUN_SERIAL TRUE)
endforeach()
