# SPDX-License-Identifier: MIT
# The PROXY protocol header (apps/common/proxy_proto.c) that load balancers
# prepend to a connection: the parser and the builder, no sockets.
iomux_test(test_proxy_proto SOURCES test_proxy_proto.c LIBS iomux_cli TIMEOUT 60)
# echod's proxy= listeners end to end (tests/echod_proxy_e2e.py): headers
# from raw sockets, echo-client and echo-bench, every bad input, in each
# mode (each backend, and the io_uring engine).
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET echod AND TARGET echo-client AND TARGET echo-bench)
  foreach(mode ${IOMUX_ECHOD_MODES} ${IOMUX_ECHOD_W2_MODES})
    add_test(NAME proxy.echod.${mode}
             COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/echod_proxy_e2e.py
                     $<TARGET_FILE:echod> $<TARGET_FILE:echo-client> $<TARGET_FILE:echo-bench>
                     ${mode})
    set_tests_properties(proxy.echod.${mode} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 180)
  endforeach()
endif()
