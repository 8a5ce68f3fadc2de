# SPDX-License-Identifier: MIT
# Packaging: install into a temporary prefix and build the examples out of
# tree against it, with pkg-config and with find_package.
set(consumer_flags "")
if(IOMUX_SANITIZE)
  # The installed library is instrumented: its users must link the runtime.
  set(consumer_flags "-fsanitize=address,undefined")
endif()
add_test(NAME consumer
         COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/consumer_test.sh ${PROJECT_BINARY_DIR}
                 ${PROJECT_SOURCE_DIR} ${CMAKE_C_COMPILER} "${consumer_flags}")
set_tests_properties(consumer PROPERTIES TIMEOUT 180)
