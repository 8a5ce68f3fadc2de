# SPDX-License-Identifier: MIT
# echod behind real load balancers (tests/lb_e2e.py): HAProxy and nginx run
# from the examples in contrib/haproxy and contrib/nginx, on loopback.
#   lb.<balancer>.tcp           plain TCP and HAProxy's plain health checks
#   lb.<balancer>.proxy.<mode>  PROXY headers: the real client
#   lb.haproxy.drain.<mode>     agent-check drain on SIGTERM
# The PROXY and drain groups run in the loop engine (epoll) and, when
# built, the io_uring engine: they take the header on different accept
# paths. Skipped (77) where the balancer is not installed; CI installs
# haproxy, nginx-light and libnginx-mod-stream.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET echod AND TARGET echo-bench)
  set(lb_modes)
  foreach(mode epoll engine-uring)
    if(mode IN_LIST IOMUX_ECHOD_MODES)
      list(APPEND lb_modes ${mode})
    endif()
  endforeach()
  function(lb_test name group mode)
    add_test(NAME ${name}
             COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/lb_e2e.py
                     $<TARGET_FILE:echod> $<TARGET_FILE:echo-bench> ${group} ${mode})
    set_tests_properties(${name} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 180)
  endfunction()
  list(GET lb_modes 0 lb_first_mode)
  foreach(group haproxy.tcp nginx.tcp)
    lb_test(lb.${group} ${group} ${lb_first_mode})
  endforeach()
  foreach(group haproxy.proxy haproxy.drain nginx.proxy)
    foreach(mode ${lb_modes})
      lb_test(lb.${group}.${mode} ${group} ${mode})
    endforeach()
  endforeach()
endif()
