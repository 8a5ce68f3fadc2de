# SPDX-License-Identifier: MIT
# Man pages agree with --help: man.<tool> renders man/<tool>.1.in
# (configured into the build tree) and compares the options it shows with
# those the tool's --help prints.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  foreach(tool echod echo-client echo-bench)
    if(TARGET ${tool} AND EXISTS ${PROJECT_SOURCE_DIR}/man/${tool}.1.in)
      add_test(NAME man.${tool}
               COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/man_help.py
                       $<TARGET_FILE:${tool}> ${PROJECT_BINARY_DIR}/man/${tool}.1)
      set_tests_properties(man.${tool} PROPERTIES TIMEOUT 60)
    endif()
  endforeach()
endif()
