# SPDX-License-Identifier: MIT
# echod's side ports (apps/echod/sideport.c), each a real echod per mode:
#   echod_agent.<mode>    --agent: HAProxy agent-check answers (up ready,
#                         weight, maint, drain), bounds, usage
# (<mode>: a backend, or engine-uring; IOMUX_ECHOD_MODES in tests/CMakeLists.txt)
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET echod)
  foreach(mode ${IOMUX_ECHOD_MODES})
    add_test(NAME echod_agent.${mode}
             COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/echod_agent_e2e.py
                     $<TARGET_FILE:echod> ${mode})
    set_tests_properties(echod_agent.${mode} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120)
  endforeach()
endif()
