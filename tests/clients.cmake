# SPDX-License-Identifier: MIT
# echo-client and echo-bench: unit tests of their
# content checker and option parsing, then end-to-end runs
# against echod in every mode (each backend, and engine-uring), the seed's Python servers and a
# misbehaving server (tests/clients_e2e.py, tests/fixtures/).
iomux_test(test_checker SOURCES test_checker.c LIBS echo_bench_core TIMEOUT 60)
iomux_test(test_client_args SOURCES test_client_args.c LIBS echo_client_core echo_bench_core
           TIMEOUT 60)

find_package(Python3 COMPONENTS Interpreter)
if(NOT Python3_Interpreter_FOUND)
  message(WARNING "python3 not found: the echo-client/echo-bench end-to-end tests are not registered")
  return()
endif()

set(clients_e2e ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/clients_e2e.py
    --client $<TARGET_FILE:echo-client> --bench $<TARGET_FILE:echo-bench>
    --fixtures ${CMAKE_CURRENT_SOURCE_DIR}/fixtures)
if(TARGET echod)
  list(APPEND clients_e2e --echod $<TARGET_FILE:echod>)
endif()

function(clients_e2e_test name)
  add_test(NAME ${name} COMMAND ${clients_e2e} ${ARGN})
  set_tests_properties(${name} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 60)
endfunction()

clients_e2e_test(clients.seed_select seed select_echo_server.py)
clients_e2e_test(clients.seed_poll seed poll_echo_server.py)
foreach(mode close reset corrupt silent extra refused)
  clients_e2e_test(clients.bad_${mode} bad ${mode})
endforeach()
clients_e2e_test(clients.bench_corrupt bench-corrupt)
clients_e2e_test(clients.bench_close bench-close)
clients_e2e_test(clients.bench_modes bench-modes)
clients_e2e_test(clients.bench_cpu bench-cpu)
clients_e2e_test(clients.usage usage)
if(TARGET echod)
  foreach(mode ${IOMUX_ECHOD_MODES} ${IOMUX_ECHOD_W2_MODES})
    clients_e2e_test(clients.echod.${mode} echod ${mode})
  endforeach()
  # The io_uring engine's --spin-receive auto, under echo-bench flat out.
  if("engine-uring" IN_LIST IOMUX_ECHOD_MODES)
    clients_e2e_test(clients.spin_auto spin-auto)
  endif()
endif()

# echo-bench's report against servers that stall or never accept, and echod
# on a Unix socket (tests/bench_e2e.py).
set(bench_e2e ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/bench_e2e.py
    --client $<TARGET_FILE:echo-client> --bench $<TARGET_FILE:echo-bench>
    --fixtures ${CMAKE_CURRENT_SOURCE_DIR}/fixtures)
if(TARGET echod)
  list(APPEND bench_e2e --echod $<TARGET_FILE:echod>)
endif()
function(bench_e2e_test name)
  add_test(NAME ${name} COMMAND ${bench_e2e} ${ARGN})
  set_tests_properties(${name} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 90)
endfunction()
bench_e2e_test(bench.stall stall)
bench_e2e_test(bench.connect_timeout connect-timeout)
if(TARGET echod)
  bench_e2e_test(bench.rate rate)
  bench_e2e_test(bench.open_cpu open-cpu)
  bench_e2e_test(bench.unix unix)
  bench_e2e_test(bench.sockopts sockopts)
endif()

# echo-client on its own: its usage errors, output, limits, --file streams
# and socket options (tests/client_e2e.py).
set(client_e2e ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/client_e2e.py
    --client $<TARGET_FILE:echo-client> --fixtures ${CMAKE_CURRENT_SOURCE_DIR}/fixtures)
if(TARGET echod)
  list(APPEND client_e2e --echod $<TARGET_FILE:echod>)
endif()
foreach(scenario usage select-limit unix output file file-bad sockopts)
  add_test(NAME client.${scenario} COMMAND ${client_e2e} ${scenario})
  set_tests_properties(client.${scenario} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 60)
endforeach()

# echo-bench's latency over time, churn, source addresses and --threads
# auto (tests/bench27_e2e.py), against echod.
if(TARGET echod)
  set(bench27_e2e ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/bench27_e2e.py
      --client $<TARGET_FILE:echo-client> --bench $<TARGET_FILE:echo-bench>
      --fixtures ${CMAKE_CURRENT_SOURCE_DIR}/fixtures --echod $<TARGET_FILE:echod>)
  foreach(scenario interval-stall interval-text churn churn-refused source source-usage
          threads-auto knee udp-rate plot)
    add_test(NAME bench27.${scenario} COMMAND ${bench27_e2e} ${scenario})
    set_tests_properties(bench27.${scenario} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120)
  endforeach()
endif()
