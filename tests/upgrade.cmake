# SPDX-License-Identifier: MIT
# echod's binary upgrade (SIGUSR2, apps/echod/upgrade.c), a real echod per mode:
#   upgrade.<mode>  the binary replaced on disk, then SIGUSR2 while echo-bench
#                   opens and echoes: nothing refused, reset or lost, the new
#                   PID serving, the old one gone with status 0; a new binary
#                   that fails leaves the old one serving; a second SIGUSR2
#                   during an upgrade is refused; proxy= kept; a new command
#                   line that does not match; --user nobody (as root); a new
#                   binary silent for 10 s is killed (epoll, engine-uring);
#                   a socket-activated echod
# (<mode>: a backend, or engine-uring; IOMUX_ECHOD_MODES in tests/CMakeLists.txt;
# and each with -w2: --workers 2, each worker's sockets handed over, both
# new workers serving, a new echod with another worker count refused:
# IOMUX_ECHOD_W2_MODES)
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET echod AND TARGET echo-bench)
  foreach(mode ${IOMUX_ECHOD_MODES} ${IOMUX_ECHOD_W2_MODES})
    add_test(NAME upgrade.${mode}
             COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/upgrade_e2e.py
                     $<TARGET_FILE:echod> $<TARGET_FILE:echo-bench> ${mode})
    set_tests_properties(upgrade.${mode} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 180)
  endforeach()
endif()
