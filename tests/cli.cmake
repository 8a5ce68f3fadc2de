# SPDX-License-Identifier: MIT
# The tools' shared command-line code (apps/common): the table-driven parser and --help writer, socket options,
# bounded printf-style appends (strbuf).
iomux_test(test_opts SOURCES test_opts.c LIBS iomux_cli TIMEOUT 60)
iomux_test(test_sockopt SOURCES test_sockopt.c LIBS iomux_cli TIMEOUT 60)
iomux_test(test_strbuf SOURCES test_strbuf.c LIBS iomux_cli TIMEOUT 60)
