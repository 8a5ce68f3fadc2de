# SPDX-License-Identifier: MIT
# House rules on size (tests/lengths.py): no file in src/, apps/ or include/
# over 600 lines, no C function over 60 lines (option tables are data).
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  add_test(NAME lint.lengths
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/lengths.py ${PROJECT_SOURCE_DIR})
  set_tests_properties(lint.lengths PROPERTIES TIMEOUT 60)
endif()
