/* SPDX-License-Identifier: MIT */
/*
 * iomux/buf.h - byte queues made of fixed-size chunks, and the pool the
 * chunks come from.
 *
 * A stream's output is an iomux_buf: a FIFO of chunks taken from a pool
 * shared by every stream of one loop. Emptied chunks go back to the pool,
 * which keeps a bounded number for reuse, so a busy server does no malloc()
 * per message and an idle connection holds no chunk at all. The pool also
 * owns the one read buffer that all streams of the loop read into.
 *
 * Like the loop, a pool belongs to one thread; nothing here takes a lock.
 */
#ifndef IOMUX_BUF_H
#define IOMUX_BUF_H

#include <stddef.h>
#include <sys/uio.h>

#include "iomux/export.h"

IOMUX_BEGIN_DECLS

struct iomux_buf_pool;
struct iomux_buf_chunk; /* private to buf.c */

/* Defaults for iomux_buf_pool_options fields left at 0. */
#define IOMUX_BUF_CHUNK_SIZE  16384u   /* payload bytes per chunk */
#define IOMUX_BUF_READ_SIZE   65536u   /* size of the shared read buffer */
#define IOMUX_BUF_CACHE_BYTES 2097152u /* free chunks kept for reuse */

struct iomux_buf_pool_options {
    size_t chunk_size;  /* 0 = IOMUX_BUF_CHUNK_SIZE */
    size_t read_size;   /* 0 = IOMUX_BUF_READ_SIZE */
    size_t cache_bytes; /* 0 = IOMUX_BUF_CACHE_BYTES; beyond it, freed
                           chunks go back to the system */
};

/* What a pool holds, for statistics and tests. */
struct iomux_buf_pool_stats {
    size_t chunks_in_use; /* held by some iomux_buf */
    size_t chunks_cached; /* free, kept for reuse */
    size_t chunk_allocs;  /* chunks ever taken from the system */
    size_t read_size;     /* bytes of the read buffer (0 until first use) */
    size_t chunk_size;    /* payload bytes per chunk: in use x this = bytes held */
};

/*
 * Creates a pool. `opts` may be NULL (defaults); it is only read. Nothing
 * is allocated but the pool itself until buffers are used. Returns 0 and
 * the pool in *out (owned by the caller), or -EINVAL / -ENOMEM.
 */
int iomux_buf_pool_new(struct iomux_buf_pool **out, const struct iomux_buf_pool_options *opts);

/* Frees the pool, its cached chunks and its read buffer. Every iomux_buf
   that used it must have been cleared first. NULL is a no-op. */
void iomux_buf_pool_free(struct iomux_buf_pool *pool);

/* The pool's read buffer, allocated on first call and kept until the pool
   is freed; its size goes to *size. Borrowed: whoever reads into it must
   be done with the bytes before anyone else asks for it (one loop, one
   callback at a time). NULL if out of memory. */
char *iomux_buf_pool_read_buffer(struct iomux_buf_pool *pool, size_t *size);

/* Offers at most `cap` bytes of the read buffer from now on (0: all of
   it), so that every stream of the pool reads at most that much at once:
   for an owner short of memory, each read is at most what it may have to
   queue. */
void iomux_buf_pool_set_read_cap(struct iomux_buf_pool *pool, size_t cap);

/* Releases every cached free chunk to the system. */
void iomux_buf_pool_trim(struct iomux_buf_pool *pool);

void iomux_buf_pool_stats(const struct iomux_buf_pool *pool, struct iomux_buf_pool_stats *out);

/*
 * A byte FIFO. The fields are visible only so that a buffer can be embedded
 * in another struct without an allocation; use the functions.
 */
struct iomux_buf {
    struct iomux_buf_pool *pool;
    struct iomux_buf_chunk *head; /* oldest bytes; NULL when empty */
    struct iomux_buf_chunk *tail;
    size_t len; /* bytes queued */
};

/* Makes `buf` an empty buffer drawing chunks from `pool` (borrowed: it must
   outlive the buffer's last use). Allocates nothing. */
void iomux_buf_init(struct iomux_buf *buf, struct iomux_buf_pool *pool);

/* Bytes queued. */
size_t iomux_buf_len(const struct iomux_buf *buf);

/* Copies `len` bytes to the end. All or nothing: returns 0, or -ENOMEM with
   the buffer unchanged. */
int iomux_buf_append(struct iomux_buf *buf, const void *bytes, size_t len);

/* Fills up to `max` iovecs with the queued bytes, oldest first, for
   writev()/sendmsg(). The iovecs borrow the buffer's memory until the next
   call that changes it. Returns the number of iovecs filled. */
int iomux_buf_iov(const struct iomux_buf *buf, struct iovec *iov, int max);

/* Drops the `len` oldest bytes (at most iomux_buf_len()); emptied chunks
   return to the pool. */
void iomux_buf_consume(struct iomux_buf *buf, size_t len);

/* Copies up to `len` of the oldest bytes to `dst` without removing them;
   returns how many were copied. */
size_t iomux_buf_peek(const struct iomux_buf *buf, void *dst, size_t len);

/* Drops everything; the buffer stays usable. */
void iomux_buf_clear(struct iomux_buf *buf);

IOMUX_END_DECLS

#endif /* IOMUX_BUF_H */
