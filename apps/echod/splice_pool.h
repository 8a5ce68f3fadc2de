/* SPDX-License-Identifier: MIT */
/*
 * splice_pool.h - the pipes echod splices through (--splice), shared by
 * every connection of an engine.
 *
 * A spliced echo moves a client's bytes socket -> pipe -> socket without
 * copying them into echod. A pipe costs two descriptors and up to its
 * capacity of kernel memory while it holds bytes, so connections do not
 * own one: a connection takes a pipe when it starts a splice and gives it
 * back as soon as the pipe is empty again. The pool is sized by the
 * connections moving bytes at the same moment, bounded (splice_pool_max())
 * under RLIMIT_NOFILE and the memory budget; a connection that finds no
 * pipe, or whose pipe() fails (EMFILE, ENFILE), copies instead.
 */
#ifndef ECHOD_SPLICE_POOL_H
#define ECHOD_SPLICE_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Each pipe's capacity (F_SETPIPE_SZ), and what a read must fill for
   --splice auto to splice the connection from then on: below 64 KiB a
   splice costs the same CPU as recv()+send() on loopback, from 64 KiB it
   saves 11-13% (docs/splice.md). */
#define SPLICE_PIPE_SIZE (64u * 1024u)
#define SPLICE_AUTO_FROM (64u * 1024u)
/* The io_uring engine lends a pipe from one completion to the next, so
   clients that send at once hold pipes at once (1,000 never-readers took
   150, and echod at RLIMIT_NOFILE refused new clients): at most this many;
   a connection that finds none copies that round. */
#define SPLICE_URING_MAX 32u

struct splice_stats {
    uint64_t spliced; /* bytes echoed through pipes */
    uint64_t no_pipe; /* times a connection copied: no pipe to take */
    size_t pipes;     /* open now (free + lent) */
    size_t lent;      /* held by connections now */
    size_t max;       /* the bound */
};

struct splice_pool;

/* The most pipes for `nofile` descriptors (RLIMIT_NOFILE) and a memory
   budget of `budget` bytes (0: none): an eighth of the descriptors (a
   quarter of them in pipe ends), a quarter of the budget, and 256. */
size_t splice_pool_max(uint64_t nofile, size_t budget);

/* NULL without memory. Pipes are made on demand, up to `max`. */
struct splice_pool *splice_pool_new(size_t max);
void splice_pool_free(struct splice_pool *p);

/* A pipe for a connection (fds[0] reads, fds[1] writes; both
   non-blocking), or false: none free and none can be made now. */
bool splice_pool_take(struct splice_pool *p, int fds[2]);

/* Back from a connection. A pipe still holding bytes (the connection
   ended with bytes in flight) is closed, never lent again. */
void splice_pool_give(struct splice_pool *p, const int fds[2], bool empty);

/* Counts bytes echoed through a pipe. */
void splice_pool_count(struct splice_pool *p, uint64_t bytes);

/* Bytes that pipes lent out may hold: kernel memory held for clients. */
size_t splice_pool_held(const struct splice_pool *p);

void splice_pool_stats(const struct splice_pool *p, struct splice_stats *out);

/* The SIGUSR1 line's part, after "; ". */
void splice_pool_print_stats(const struct splice_pool *p, FILE *f);

/* The same part for `st` (with workers: the sum of every worker's pool). */
void splice_stats_print(const struct splice_stats *st, FILE *f);

#endif /* ECHOD_SPLICE_POOL_H */
