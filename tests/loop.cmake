# SPDX-License-Identifier: MIT
# Unit tests of the loop (issue 2): fd readiness, timers, signals and
# allocation failure, each registered once per compiled backend
# (loop.epoll, loop.poll, loop.select, timer.epoll, ...), and the
# backend-independent API checks once.
find_package(Threads REQUIRED)
iomux_backend_test(loop SOURCES test_loop.c LIBS Threads::Threads)
iomux_backend_test(timer SOURCES test_timer.c)
iomux_backend_test(signal SOURCES test_signal.c)
# Sets the process-wide allocator, so it is a program of its own.
iomux_backend_test(alloc SOURCES test_alloc.c)
iomux_test(loop_api SOURCES test_loop_api.c)
