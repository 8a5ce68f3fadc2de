# SPDX-License-Identifier: MIT
# The level-triggered rule (issue 9): still-ready fds are reported by every
# wait, drained ones are not, on every backend (level.epoll, ..., level.uring).
iomux_backend_test(level SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_level.c)
