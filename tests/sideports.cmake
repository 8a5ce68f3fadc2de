# SPDX-License-Identifier: MIT
# echod's side ports (apps/echod/sideport.c), each a real echod per mode:
#   echod_agent.<mode>    --agent: HAProxy agent-check answers (up ready,
#                         weight, maint, drain), bounds, usage
#   echod_metrics.<mode>  --metrics: scraped with curl and raw sockets, checked
#                         with promtool; counters after known traffic; HTTP
#                         errors, the deadline, concurrent scrapes, the limit
#   echod_metrics.prometheus  a real Prometheus server scrapes echod once
#                         (skipped, saying why, if it does not start in time)
# (<mode>: a backend, or engine-uring; IOMUX_ECHOD_MODES in tests/CMakeLists.txt)
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET echod)
  foreach(mode ${IOMUX_ECHOD_MODES} ${IOMUX_ECHOD_W2_MODES})
    add_test(NAME echod_agent.${mode}
             COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/echod_agent_e2e.py
                     $<TARGET_FILE:echod> ${mode})
    set_tests_properties(echod_agent.${mode} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120)
    add_test(NAME echod_metrics.${mode}
             COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/echod_metrics_e2e.py
                     $<TARGET_FILE:echod> ${mode})
    set_tests_properties(echod_metrics.${mode} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120)
  endforeach()
  list(GET IOMUX_ECHOD_MODES 0 first_mode)
  add_test(NAME echod_metrics.prometheus
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/echod_metrics_e2e.py
                   $<TARGET_FILE:echod> ${first_mode} prometheus)
  set_tests_properties(echod_metrics.prometheus PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120)
endif()
# --metrics' request-head parser (apps/echod/http_head.c) and the agent's
# answers (apps/echod/agent.h), without a socket.
iomux_test(test_http_head SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_http_head.c LIBS echod_core
           TIMEOUT 60)
