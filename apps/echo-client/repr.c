/* SPDX-License-Identifier: MIT */
/* repr.c - Python's bytes repr(); see repr.h. */
#include "repr.h"

#include <string.h>

void bytes_repr_write(FILE *f, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    /* Python picks double quotes only when that avoids escaping. */
    int quote = '\'';
    if (memchr(p, '\'', len) != NULL && memchr(p, '"', len) == NULL)
        quote = '"';
    fputc('b', f);
    fputc(quote, f);
    for (size_t i = 0; i < len; i++) {
        unsigned c = p[i];
        if (c == (unsigned)quote || c == '\\') {
            fputc('\\', f);
            fputc((int)c, f);
        } else if (c == '\t') {
            fputs("\\t", f);
        } else if (c == '\n') {
            fputs("\\n", f);
        } else if (c == '\r') {
            fputs("\\r", f);
        } else if (c < 0x20 || c >= 0x7f) {
            fprintf(f, "\\x%02x", c);
        } else {
            fputc((int)c, f);
        }
    }
    fputc(quote, f);
}
