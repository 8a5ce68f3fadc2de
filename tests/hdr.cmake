# SPDX-License-Identifier: MIT
# echo-bench's HdrHistogram-compatible histogram and interval log
# (apps/echo-bench/hdr.c, hdr_log.c): a C unit test of the layout, percentile
# semantics, merge and V2 encoding, then hdr_java.py, which has Debian's
# libhdrhistogram-java read logs written by tests/hdr_write.c and compares
# its counts and percentiles with the C histogram's (skips without java,
# the jar or zlib).
iomux_test(test_hdr SOURCES test_hdr.c LIBS echo_bench_core m TIMEOUT 60)

find_package(Python3 COMPONENTS Interpreter)
if(NOT Python3_Interpreter_FOUND)
  message(WARNING "python3 not found: the HdrHistogram log tests are not registered")
  return()
endif()

set(hdr_java ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/hdr_java.py
    --reader ${CMAKE_CURRENT_SOURCE_DIR}/hdr/ReadLog.java)
get_property(have_zlib GLOBAL PROPERTY ECHO_BENCH_HAVE_ZLIB)
if(have_zlib)
  iomux_test_executable(hdr_write SOURCES hdr_write.c LIBS echo_bench_core)
  list(APPEND hdr_java --writer $<TARGET_FILE:hdr_write>)
endif()
foreach(case intervals edges merge)
  add_test(NAME hdr.java_${case} COMMAND ${hdr_java} ${case})
  set_tests_properties(hdr.java_${case} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120)
endforeach()

# --hdr-log from real runs against echod, read back and merged by the Java
# library (tests/hdr_bench_e2e.py); skips without java, the jar or zlib.
if(TARGET echod AND TARGET echo-bench)
  set(hdr_bench ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/hdr_bench_e2e.py
      --client $<TARGET_FILE:echo-client> --bench $<TARGET_FILE:echo-bench>
      --fixtures ${CMAKE_CURRENT_SOURCE_DIR}/fixtures --echod $<TARGET_FILE:echod>)
  foreach(scenario log merge)
    add_test(NAME hdr.bench_${scenario} COMMAND ${hdr_bench} ${scenario})
    set_tests_properties(hdr.bench_${scenario} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120)
  endforeach()
endif()
