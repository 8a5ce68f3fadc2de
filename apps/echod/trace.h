/* SPDX-License-Identifier: MIT */
/*
 * trace.h - text in the words of the Python seed server: bytes as Python's
 * repr() writes them (b'...') and addresses as Python's socket module
 * gives them (('127.0.0.1', 40000)).
 */
#ifndef ECHOD_TRACE_H
#define ECHOD_TRACE_H

#include <stddef.h>
#include <stdio.h>

#include <iomux/net.h>

/* Longest text trace_addr() writes, NUL included. */
#define TRACE_ADDR_STRLEN (IOMUX_ADDR_STRLEN + 40)

/* Writes repr(bytes) to `f`: b'..', or b".." when the bytes hold a ' and
   no ", with \\ \' \t \n \r and \xhh escapes as Python writes them. */
void trace_bytes(FILE *f, const void *bytes, size_t len);

/* Python's address tuple: ('1.2.3.4', 5) or ('::1', 5, 0, 0). */
void trace_addr(const struct iomux_addr *addr, char *buf, size_t size);

#endif /* ECHOD_TRACE_H */
