# SPDX-License-Identifier: MIT
# Loop overhead per dispatched event, per backend. Run by
# bench/run.sh, never by ctest.
add_executable(loop_overhead ${CMAKE_CURRENT_LIST_DIR}/loop_overhead.c)
target_link_libraries(loop_overhead PRIVATE iomux)
