# SPDX-License-Identifier: MIT
# echod's fault modes (apps/echod/faults*.c): each mode measured from the
# client side (tests/faults_e2e.py), in each mode of IOMUX_ECHOD_MODES; with
# the io_uring engine the fault listeners are the readiness engine's beside it.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET echod AND TARGET echo-client AND TARGET echo-bench)
  foreach(mode ${IOMUX_ECHOD_MODES} ${IOMUX_ECHOD_W2_MODES})
    add_test(NAME faults.echod.${mode}
             COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/faults_e2e.py
                     $<TARGET_FILE:echod> $<TARGET_FILE:echo-client> $<TARGET_FILE:echo-bench>
                     ${mode})
    set_tests_properties(faults.echod.${mode} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
  endforeach()
endif()
# The fault keys of --listen and --udp-drop, and the seeded draws.
iomux_test(test_echod_faults SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_echod_faults.c
           LIBS echod_core TIMEOUT 60)
# A stream transport that waits for its owner (*wait = 0) and
# iomux_stream_resume(): what the fault modes pace and delay with.
iomux_backend_test(stream_park SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_stream_park.c)
