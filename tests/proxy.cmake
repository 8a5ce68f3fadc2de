# SPDX-License-Identifier: MIT
# The PROXY protocol header (apps/common/proxy_proto.c) that load balancers
# prepend to a connection: the parser and the builder, no sockets.
iomux_test(test_proxy_proto SOURCES test_proxy_proto.c LIBS iomux_cli TIMEOUT 60)
