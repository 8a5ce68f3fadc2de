# SPDX-License-Identifier: MIT
# Reliability: faults injected under echod and the stream layer, see docs/reliability.md.
#   stream_faults.<backend>        allocation-failure sweep of pools and streams,
#                                  short reads and writes through the stream
#   reliability.<test>.<mode>      real echod processes, tests/reliability_e2e.py,
#                                  in each mode (a backend, or engine-uring):
#     faults        byte-exact under the LD_PRELOAD fault shim, SHA-256 per stream
#     echo          engine-uring only, in place of faults: the same bytes and
#                   checks without the shim (see below)
#     selftest      the shim damages data: the checkers must catch it (once)
#     malloc_sweep  echod's allocation N fails, for every N
#     fdleak        4,000 cycles under RLIMIT_NOFILE 20
#     slow          1,000 never-reading clients: RSS bound
#     trickle       stalled and 1 B/s clients cut by --idle-timeout
#     scale         10,000 concurrent connections
# The shim (tests/shim/) is built here only, for these tests; it is not
# built in sanitizer builds, whose interceptors would shadow it anyway.
iomux_backend_test(stream_faults SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_stream_faults.c
                   TIMEOUT 120)

if(NOT IOMUX_SANITIZE)
  add_library(iomux_fault MODULE ${CMAKE_CURRENT_LIST_DIR}/shim/iomux_fault.c)
  target_link_libraries(iomux_fault PRIVATE ${CMAKE_DL_LIBS})
  set_target_properties(iomux_fault PROPERTIES PREFIX "")
endif()

find_package(Python3 COMPONENTS Interpreter)
if(NOT Python3_Interpreter_FOUND OR NOT TARGET echod)
  message(STATUS "python3 or echod missing: the reliability end-to-end tests are not registered")
  return()
endif()

set(reliability_e2e ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/reliability_e2e.py
    --echod $<TARGET_FILE:echod>)
if(TARGET echo-bench)
  list(APPEND reliability_e2e --bench $<TARGET_FILE:echo-bench>)
endif()
if(TARGET iomux_fault)
  list(APPEND reliability_e2e --shim $<TARGET_FILE:iomux_fault>)
endif()

# 1 GiB per backend under faults takes a few seconds in an optimised or
# debug build; sanitizer builds skip it (the shim cannot interpose there).
# The engine's `echo` (below) pushes as much, in every build.
set(IOMUX_FAULT_BYTES 1073741824 CACHE STRING "Bytes pushed through echod under faults, per backend")

# The fault shim injects its faults into the C library's send, recv and
# accept. The io_uring engine (engine-uring) never calls them: its accepts,
# receives and sends are done by the kernel from the ring, so under the shim
# it would see no fault at all (the shim counts io_calls=0) and the test
# would prove nothing. For that mode `faults` is not registered; `echo`
# pushes the same --bytes through the same SHA-256 checked streams, without
# faults. (malloc_sweep still applies: the shim's failing malloc is the C
# library's, which the engine calls like any other code.)
# reliability.<t>.<mode>: the faults and echo tests push --bytes.
function(reliability_test t mode)
  string(REPLACE "_" "-" arg ${t})
  set(extra "")
  if(t STREQUAL "faults" OR t STREQUAL "echo")
    set(extra --bytes ${IOMUX_FAULT_BYTES})
  endif()
  add_test(NAME reliability.${t}.${mode} COMMAND ${reliability_e2e} ${extra} ${arg} ${mode})
  set_tests_properties(reliability.${t}.${mode} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
endfunction()

foreach(mode ${IOMUX_ECHOD_MODES} ${IOMUX_ECHOD_W2_MODES})
  if(mode MATCHES "^engine-uring")
    set(tests echo malloc_sweep fdleak slow trickle scale)
  else()
    set(tests faults malloc_sweep fdleak slow trickle scale)
  endif()
  foreach(t ${tests})
    reliability_test(${t} ${mode})
  endforeach()
endforeach()
# The engine receiving by spinning (--spin-receive on), the path it takes
# when saturated: the same checked bytes, and idle clients cut by the
# loop's timers while the engine never sleeps.
if(IOMUX_HAVE_URING)
  reliability_test(echo engine-uring-spin)
  reliability_test(trickle engine-uring-spin)
endif()
# --splice on, on every backend: the shim sees no recv/send to fault
# (splice moves the bytes), so `echo` stands for `faults` as with the engine.
foreach(splice_mode ${IOMUX_SPLICE_MODES})
  if(splice_mode STREQUAL IOMUX_SPLICE_URING_MODE)
    continue() # below
  endif()
  foreach(t echo malloc_sweep fdleak slow trickle scale)
    reliability_test(${t} ${splice_mode})
  endforeach()
  set_tests_properties(reliability.scale.${splice_mode} reliability.slow.${splice_mode}
                       PROPERTIES RESOURCE_LOCK reliability_many_conns)
endforeach()
# The io_uring engine's splice (IORING_OP_SPLICE): another path, every test.
if(IOMUX_SPLICE_URING_MODE)
  foreach(t echo malloc_sweep fdleak slow trickle scale)
    reliability_test(${t} ${IOMUX_SPLICE_URING_MODE})
  endforeach()
  set_tests_properties(reliability.scale.${IOMUX_SPLICE_URING_MODE}
                       PROPERTIES RESOURCE_LOCK reliability_many_conns)
  set_tests_properties(reliability.slow.${IOMUX_SPLICE_URING_MODE} PROPERTIES RUN_SERIAL TRUE)
endif()
list(GET IOMUX_BACKENDS 0 first_backend)
add_test(NAME reliability.selftest COMMAND ${reliability_e2e} selftest ${first_backend})
set_tests_properties(reliability.selftest PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120)

# The scale tests hold 10,000 connections each (20,000 descriptors with
# echod's), the slow tests 1,000 stuck ones and about 250 MiB of kernel
# socket buffers (echod's at 32 KiB; 1.5 GiB with the defaults, when they
# ran alone): never two of them at once.
foreach(mode ${IOMUX_ECHOD_MODES} ${IOMUX_ECHOD_W2_MODES})
  set_tests_properties(reliability.scale.${mode} reliability.slow.${mode}
                       PROPERTIES RESOURCE_LOCK reliability_many_conns)
endforeach()
