# SPDX-License-Identifier: MIT
# The tools' shared option parsing (apps/common): the table-driven parser and --help writer.
iomux_test(test_opts SOURCES test_opts.c LIBS iomux_cli TIMEOUT 60)
