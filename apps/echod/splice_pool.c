/* SPDX-License-Identifier: MIT */
/*
 * splice_pool.c - the shared pipes of --splice (splice_pool.h).
 *
 * Free pipes are a stack: the pipe given back last is lent next, so a
 * ping-pong client reuses one warm pipe and the others stay empty (an
 * empty pipe holds no pages). Pipes are made on demand; when pipe2()
 * fails (EMFILE, ENFILE: descriptors run out, or ENOMEM), the next
 * RETRY_AFTER requests copy without trying again, so a server at its
 * descriptor limit does not pay a failing system call per message.
 */
#include "splice_pool.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#define POOL_HARD_MAX 256
#define RETRY_AFTER   64

struct splice_pool {
    int (*free_pipes)[2];
    size_t nfree;
    size_t lent;
    size_t max;
    unsigned skip; /* requests to refuse before pipe2() is tried again */
    uint64_t spliced;
    uint64_t no_pipe;
};

size_t splice_pool_max(uint64_t nofile, size_t budget)
{
    uint64_t n = nofile / 8;
    if (budget && n > budget / 4 / SPLICE_PIPE_SIZE)
        n = budget / 4 / SPLICE_PIPE_SIZE;
    return n > POOL_HARD_MAX ? POOL_HARD_MAX : (size_t)n;
}

struct splice_pool *splice_pool_new(size_t max)
{
    struct splice_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->max = max;
    if (max && !(p->free_pipes = calloc(max, sizeof(*p->free_pipes)))) {
        free(p);
        return NULL;
    }
    return p;
}

void splice_pool_free(struct splice_pool *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nfree; i++) {
        close(p->free_pipes[i][0]);
        close(p->free_pipes[i][1]);
    }
    free(p->free_pipes);
    free(p);
}

/* A new pipe of SPLICE_PIPE_SIZE. One the kernel will not size (past
   fs.pipe-user-pages-soft it gives 2 slots and refuses to grow them) is
   not worth a splice per 8 KiB: closed, and reported as none. */
static bool make_pipe(int fds[2])
{
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
        return false;
    int size = fcntl(fds[0], F_GETPIPE_SZ);
    if (size < (int)SPLICE_PIPE_SIZE && fcntl(fds[0], F_SETPIPE_SZ, SPLICE_PIPE_SIZE) < 0) {
        close(fds[0]);
        close(fds[1]);
        return false;
    }
    return true;
}

bool splice_pool_take(struct splice_pool *p, int fds[2])
{
    if (p->nfree > 0) {
        p->nfree--;
        fds[0] = p->free_pipes[p->nfree][0];
        fds[1] = p->free_pipes[p->nfree][1];
        p->lent++;
        return true;
    }
    if (p->lent >= p->max || p->skip > 0 || !make_pipe(fds)) {
        if (p->skip > 0)
            p->skip--;
        else if (p->lent < p->max)
            p->skip = RETRY_AFTER;
        p->no_pipe++;
        return false;
    }
    p->lent++;
    return true;
}

void splice_pool_give(struct splice_pool *p, const int fds[2], bool empty)
{
    p->lent--;
    if (!empty || p->nfree == p->max) {
        close(fds[0]);
        close(fds[1]);
        p->skip = 0; /* a descriptor pair came free */
        return;
    }
    p->free_pipes[p->nfree][0] = fds[0];
    p->free_pipes[p->nfree][1] = fds[1];
    p->nfree++;
}

void splice_pool_count(struct splice_pool *p, uint64_t bytes)
{
    p->spliced += bytes;
}

size_t splice_pool_held(const struct splice_pool *p)
{
    return p ? p->lent * SPLICE_PIPE_SIZE : 0;
}

void splice_pool_stats(const struct splice_pool *p, struct splice_stats *out)
{
    *out = (struct splice_stats){0};
    if (!p)
        return;
    out->spliced = p->spliced;
    out->no_pipe = p->no_pipe;
    out->pipes = p->nfree + p->lent;
    out->lent = p->lent;
    out->max = p->max;
}

void splice_pool_print_stats(const struct splice_pool *p, FILE *f)
{
    struct splice_stats st;
    splice_pool_stats(p, &st);
    splice_stats_print(&st, f);
}

void splice_stats_print(const struct splice_stats *st, FILE *f)
{
    fprintf(f, "; spliced %" PRIu64 " bytes, pipes %zu lent, %zu open (max %zu), no pipe %" PRIu64,
            st->spliced, st->lent, st->pipes, st->max, st->no_pipe);
}
