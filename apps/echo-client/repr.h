/* SPDX-License-Identifier: MIT */
/*
 * repr.h - bytes printed the way Python's repr() prints a bytes object
 * (b'...'), so echo-client tells the same story as the seed's clients.
 */
#ifndef ECHO_CLIENT_REPR_H
#define ECHO_CLIENT_REPR_H

#include <stddef.h>
#include <stdio.h>

/* Writes repr(bytes(buf[0..len])) to `f`: b'..' (or b".." when the data
   holds a ' and no "), with \t \n \r \\ \xhh escapes as Python writes them. */
void bytes_repr_write(FILE *f, const void *buf, size_t len);

#endif /* ECHO_CLIENT_REPR_H */
