# SPDX-License-Identifier: MIT
# bench/compare.py: its options, and its --workers rows run in quick mode
# (tests/bench_compare_e2e.py; records checked, no performance judged), and
# bench/scale.sh for one short round (bench.compare_scale), and
# bench/instr_per_msg.py (bench.compare_instr, under callgrind).
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET echod AND TARGET echo-bench)
  # valgrind cannot run a sanitizer build's echod: bench.compare_instr skips there.
  set(sanitized "")
  if(IOMUX_SANITIZE)
    set(sanitized --sanitized)
  endif()
  foreach(case usage workers scale instr)
    add_test(NAME bench.compare_${case}
             COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/bench_compare_e2e.py
                     --source ${PROJECT_SOURCE_DIR} --build ${CMAKE_BINARY_DIR} ${sanitized} ${case})
    set_tests_properties(bench.compare_${case} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 240)
  endforeach()
endif()
