/* SPDX-License-Identifier: MIT */
/*
 * tagged_stderr.c - --trace with --workers: stderr becomes a stream that writes each line with
 * one writev(2), prefixed "[worker N] " when a worker thread wrote it (lines that start
 * "echod:" are left as they are: they name no connection). A line is whole in the stream's
 * buffer when it is written: stderr is line-buffered, each line is one stdio call or made
 * under flockfile() (echod_trace_echo()), so the thread that flushes it is the one that wrote
 * it.
 */
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

static _Thread_local unsigned thread_worker; /* 0: the main thread */
static _Thread_local int mid_line;           /* the last write ended without a newline */

void echod_tag_thread(unsigned worker)
{
    thread_worker = worker;
}

/* Writes all of iov (2 pieces), as one writev when the kernel takes it whole. */
static int write_all(struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(STDERR_FILENO, iov, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        while (n > 0 && (size_t)w >= iov[0].iov_len) {
            w -= (ssize_t)iov[0].iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov[0].iov_base = (char *)iov[0].iov_base + w;
            iov[0].iov_len -= (size_t)w;
        }
    }
    return 0;
}

static ssize_t tagged_write(void *cookie, const char *buf, size_t size)
{
    (void)cookie;
    char tag[24] = "";
    if (thread_worker)
        snprintf(tag, sizeof(tag), "[worker %u] ", thread_worker);
    for (size_t at = 0; at < size;) {
        const char *nl = memchr(buf + at, '\n', size - at);
        size_t len = nl ? (size_t)(nl - (buf + at)) + 1 : size - at;
        int tagged = !mid_line && tag[0] && strncmp(buf + at, "echod:", len < 6 ? len : 6) != 0;
        struct iovec iov[2] = {{tag, tagged ? strlen(tag) : 0}, {(char *)buf + at, len}};
        if (write_all(iov, 2) < 0)
            return at ? (ssize_t)at : -1;
        mid_line = nl == NULL;
        at += len;
    }
    return (ssize_t)size;
}

int echod_tag_stderr(void)
{
    cookie_io_functions_t io = {.write = tagged_write};
    FILE *f = fopencookie(NULL, "w", io);
    if (!f)
        return -errno;
    setvbuf(f, NULL, _IOLBF, BUFSIZ);
    fflush(stderr);
    stderr = f;
    return 0;
}
