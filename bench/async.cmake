# SPDX-License-Identifier: MIT
# What waking a loop from another thread costs (iomux_async_send), coalesced
# and not. Run by bench/run.sh, never by ctest.
find_package(Threads REQUIRED)
add_executable(async_wake ${CMAKE_CURRENT_LIST_DIR}/async_wake.c)
target_link_libraries(async_wake PRIVATE iomux Threads::Threads)
