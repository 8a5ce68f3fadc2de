# SPDX-License-Identifier: MIT
# README: every command of README.md's ```sh blocks runs (tests/readme_test.py).
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  set(readme_cflags "")
  if(IOMUX_SANITIZE)
    set(readme_cflags "-fsanitize=address,undefined") # the installed library is instrumented
  endif()
  add_test(NAME readme
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/readme_test.py
                   ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR} ${CMAKE_C_COMPILER} "${readme_cflags}")
  set_tests_properties(readme PROPERTIES TIMEOUT 300)
endif()
