# SPDX-License-Identifier: MIT
# echod's datagram echo and daemon integration (socket activation, --inetd,
# --user), and echo-bench's --udp mode.
#   udp.<backend>         apps/echod/udp.c and daemon.c driven directly (white-box)
#   echod_udp.<mode>      real echod processes: UDP and Unix datagram echo
#   echod_daemon.<mode>   socket activation, --inetd, --user, --max-conns-per-ip,
#                         Unix stream sockets
# (<mode>: a backend, or engine-uring; IOMUX_ECHOD_MODES in tests/CMakeLists.txt)
iomux_backend_test(udp SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_udp.c LIBS echod_core TIMEOUT 60)

find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET echod)
  foreach(mode ${IOMUX_ECHOD_MODES} ${IOMUX_ECHOD_W2_MODES})
    add_test(NAME echod_udp.${mode}
             COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/echod_udp_e2e.py
                     $<TARGET_FILE:echod> ${mode} --bench $<TARGET_FILE:echo-bench>)
    set_tests_properties(echod_udp.${mode} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 90)
    add_test(NAME echod_daemon.${mode}
             COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/echod_daemon_e2e.py
                     $<TARGET_FILE:echod> ${mode})
    set_tests_properties(echod_daemon.${mode} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 90)
  endforeach()
endif()
