# SPDX-License-Identifier: MIT
# echod over TCP: end-to-end runs and its engine's pure policies.
#   echod.<mode>      real echod processes driven by tests/echod_e2e.py, in
#                     each mode: a backend, or engine-uring (IOMUX_ECHOD_MODES),
#                     and engine-uring-poll and engine-uring-spin, and
#                     <backend>-splice (--splice on, IOMUX_SPLICE_MODES),
#                     each mode with --workers 2 (<mode>-w2), and epoll and
#                     engine-uring with --workers auto (<mode>-wauto)
#   echod.engine-auto --engine auto: the engine it picks, and its fall-back

find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET echod)
  foreach(mode ${IOMUX_ECHOD_MODES} ${IOMUX_ECHOD_W2_MODES} ${IOMUX_ECHOD_WAUTO_MODES})
    add_test(NAME echod.${mode}
             COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/echod_e2e.py
                     $<TARGET_FILE:echod> ${mode})
    set_tests_properties(echod.${mode} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 240)
  endforeach()
  # --splice on, every test on every backend and on the io_uring engine.
  foreach(mode ${IOMUX_SPLICE_MODES})
    add_test(NAME echod.${mode}
             COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/echod_e2e.py
                     $<TARGET_FILE:echod> ${mode})
    set_tests_properties(echod.${mode} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 240)
    if(mode STREQUAL IOMUX_SPLICE_URING_MODE)
      set_tests_properties(echod.${mode} PROPERTIES TIMEOUT 480)
    endif()
  endforeach()
  # The engine as the guest of a poll loop (the loop watches the ring's fd)
  # rather than the owner of an epoll loop's wait: the other code path.
  if(IOMUX_HAVE_URING)
    add_test(NAME echod.engine-uring-poll
             COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/echod_e2e.py
                     $<TARGET_FILE:echod> engine-uring-poll)
    set_tests_properties(echod.engine-uring-poll PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 240)
    # Receiving by spinning (--spin-receive on): the path the engine takes
    # when saturated, from the start.
    add_test(NAME echod.engine-uring-spin
             COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/echod_e2e.py
                     $<TARGET_FILE:echod> engine-uring-spin)
    set_tests_properties(echod.engine-uring-spin PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 240)
  endif()
else()
  message(STATUS "python3 not found: echod end-to-end tests are not registered")
endif()
# --workers: connections spread over the workers, limits for the whole
# process, the drain, UDP and --trace with two workers.
if(Python3_Interpreter_FOUND AND TARGET echod)
  foreach(mode ${IOMUX_ECHOD_MODES})
    if(mode STREQUAL "epoll" OR mode STREQUAL "engine-uring")
      add_test(NAME echod.workers.${mode}
               COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/echod_workers_e2e.py
                       $<TARGET_FILE:echod> ${mode}-w2)
      set_tests_properties(echod.workers.${mode} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 240
                           ENVIRONMENT "IOMUX_NO_STEER=$<TARGET_FILE:no_steer>")
      # --steer cpu: a client pinned to a CPU is served by the worker pinned there, before
      # and after an upgrade (skipped with fewer than 2 CPUs).
      add_test(NAME echod.workers-steer.${mode}
               COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/echod_workers_e2e.py
                       $<TARGET_FILE:echod> ${mode}-w2 steer_cpu steer_upgrade)
      set_tests_properties(echod.workers-steer.${mode} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 240)
    endif()
  endforeach()
  # Makes the kernel refuse --steer cpu's pinning or its BPF program (seccomp).
  add_executable(no_steer ${CMAKE_CURRENT_LIST_DIR}/no_steer.c)
endif()
# The engine's batched-wait policy (apps/echod/batch.h), on any kernel.
iomux_test(test_batch SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_batch.c LIBS echod_core TIMEOUT 60)
# echod's command line (apps/echod/options.c), without starting a server.
iomux_test(test_echod_options SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_echod_options.c
           LIBS echod_core TIMEOUT 60)
# --engine auto, the default: io_uring where it works, the readiness engine
# where a seccomp filter (tests/no_uring.c) makes the kernel refuse it.
if(Python3_Interpreter_FOUND AND TARGET echod AND CMAKE_SYSTEM_NAME STREQUAL "Linux")
  add_executable(no_uring ${CMAKE_CURRENT_LIST_DIR}/no_uring.c)
  add_test(NAME echod.engine-auto
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/echod_auto_e2e.py
                   $<TARGET_FILE:echod> $<TARGET_FILE:no_uring>)
  set_tests_properties(echod.engine-auto PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120)
endif()
