# SPDX-License-Identifier: MIT
# TLS (issue 25): the layer of apps/common/tls.c over a socketpair
# (tests/test_tls.c), on iomux streams on every backend (test_tls_stream.c),
# then echo-client and echo-bench --tls against socat, ncat and a
# Python ssl server with certificates made at run time (tests/tls_e2e.py).
# Without OpenSSL 3 in the build every one of them reports skipped (77).
if(IOMUX_HAVE_TLS)
  iomux_test(test_tls SOURCES test_tls.c LIBS iomux_tls TIMEOUT 60)
else()
  iomux_test(test_tls SOURCES test_tls.c TIMEOUT 60)
endif()

# TLS on iomux streams (tls_stream.c), on every backend.
if(IOMUX_HAVE_TLS)
  iomux_backend_test(tls_stream SOURCES test_tls_stream.c LIBS iomux_tls TIMEOUT 120)
else()
  iomux_backend_test(tls_stream SOURCES test_tls_stream.c TIMEOUT 60)
endif()

find_package(Python3 COMPONENTS Interpreter)
if(NOT Python3_Interpreter_FOUND)
  return()
endif()
foreach(scenario socat ncat file verify mtls sni-alpn usage bench-socat bench-ncat bench-verify)
  add_test(NAME tls.${scenario}
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/tls_e2e.py
                   --client $<TARGET_FILE:echo-client> --bench $<TARGET_FILE:echo-bench>
                   --have-tls ${IOMUX_HAVE_TLS} ${scenario})
  set_tests_properties(tls.${scenario} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120)
endforeach()

# echod's TLS listeners end to end (tests/echod_tls_e2e.py), in each mode: every
# readiness backend and the io_uring engine (whose TLS listeners the readiness engine
# beside it serves), each also with --workers 2 (MODE-w2).
if(TARGET echod AND TARGET echo-client AND TARGET echo-bench)
  foreach(mode ${IOMUX_ECHOD_MODES} ${IOMUX_ECHOD_W2_MODES})
    add_test(NAME tls.echod.${mode}
             COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/echod_tls_e2e.py
                     $<TARGET_FILE:echod> $<TARGET_FILE:echo-client> $<TARGET_FILE:echo-bench>
                     ${IOMUX_HAVE_TLS} ${mode})
    set_tests_properties(tls.echod.${mode} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
  endforeach()
endif()
