# SPDX-License-Identifier: MIT
# libiomux itself: the loop on every backend, timers, signals, allocation
# failure, the level-triggered rule, buffers and streams, and net.h.
#   loop/timer/signal/alloc/level/stream/async.<backend>  once per compiled backend
#   loop_api, net                                         backend-independent checks
find_package(Threads REQUIRED)
iomux_backend_test(loop SOURCES test_loop.c LIBS Threads::Threads)
iomux_backend_test(timer SOURCES test_timer.c)
iomux_backend_test(signal SOURCES test_signal.c)
# Sets the process-wide allocator, so it is a program of its own.
iomux_backend_test(alloc SOURCES test_alloc.c)
iomux_test(loop_api SOURCES test_loop_api.c)
# Still-ready fds are reported by every wait, drained ones are not.
iomux_backend_test(level SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_level.c)
# Buffers and streams over socket pairs (white-box).
iomux_backend_test(stream SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_stream.c)
# iomux_stream_hold() and the pool's read cap: what echod's memory budget uses.
iomux_backend_test(stream_hold SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_stream_hold.c)
iomux_test(net SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_net.c)
# Waking a loop from other threads and signal handlers (async handles).
iomux_backend_test(async SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_async.c LIBS Threads::Threads)
# The same tests on the self-pipe that systems without eventfd use: the test
# links its own copy of async.c, built to use a pipe, ahead of the library's.
iomux_backend_test(async_pipe SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_async.c
                   ${PROJECT_SOURCE_DIR}/src/async.c LIBS Threads::Threads)
target_compile_definitions(test_async_pipe PRIVATE IOMUX_WAKE_PIPE=1)
# Transports (stream.h's iomux_stream_transport) with a fake TLS-like one.
iomux_backend_test(stream_tx SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_stream_tx.c)
