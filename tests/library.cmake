# SPDX-License-Identifier: MIT
# libiomux itself: the loop on every backend, timers, signals, allocation
# failure, the level-triggered rule, buffers and streams, and net.h.
#   loop/timer/signal/alloc/level/stream.<backend>  once per compiled backend
#   loop_api, net                                   backend-independent checks
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
iomux_test(net SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_net.c)
# Transports (stream.h's iomux_stream_transport) with a fake TLS-like one.
iomux_backend_test(stream_tx SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_stream_tx.c)
