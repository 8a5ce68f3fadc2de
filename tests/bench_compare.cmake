# SPDX-License-Identifier: MIT
# bench/compare.py: its options, and its --workers rows run in quick mode
# (tests/bench_compare_e2e.py; records checked, no performance judged), and
# bench/scale.sh for one short round (bench.compare_scale).
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET echod AND TARGET echo-bench)
  foreach(case usage workers scale)
    add_test(NAME bench.compare_${case}
             COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/bench_compare_e2e.py
                     --source ${PROJECT_SOURCE_DIR} --build ${CMAKE_BINARY_DIR} ${case})
    set_tests_properties(bench.compare_${case} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 240)
  endforeach()
endif()
