# SPDX-License-Identifier: MIT
# The memory budget (issue 29, docs/reliability.md), tests/budget_e2e.py:
#   budget.<mode>   300 clients that send 1 MiB and never read, 20 that echo,
#                   against --max-buffered 16M: RSS under the budget plus the
#                   overhead measured once serving, echoes byte-exact at
#                   least half their rate alone, never-readers shed only
#                   after --shed-after; and --udp's receive batch counts
#                   (an idle echod with --udp holds 512 KiB more)
# `budget_e2e.py measure MODE` prints the RSS per never-reading client
# without a budget (the figures of docs/reliability.md); it is not a test.
find_package(Python3 COMPONENTS Interpreter)
if(NOT Python3_Interpreter_FOUND OR NOT TARGET echod)
  return()
endif()
# --splice on: bytes in pipes spill into the queues the budget counts.
set(budget_splice_mode "")
if(IOMUX_SPLICE_MODES)
  list(GET IOMUX_SPLICE_MODES 0 budget_splice_mode)
endif()
foreach(mode ${IOMUX_ECHOD_MODES} ${budget_splice_mode} ${IOMUX_SPLICE_URING_MODE}
             ${IOMUX_ECHOD_W2_MODES})
  add_test(NAME budget.${mode}
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/budget_e2e.py --echod
                   $<TARGET_FILE:echod> budget ${mode})
  # Rates are compared within the test, alone and next to the never-readers,
  # and RSS is sampled: alone, so that no other test's load or socket
  # buffers skew them (10 s each).
  set_tests_properties(budget.${mode} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120 RUN_SERIAL TRUE)
endforeach()
