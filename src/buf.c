/* SPDX-License-Identifier: MIT */
/*
 * buf.c - chunked byte FIFOs and the per-loop pool of chunks behind them.
 *
 * Why chunks rather than one growing array: a queue that grows by realloc()
 * copies everything it holds each time it doubles, and a queue that is
 * compacted with memmove() copies on every partial send. Fixed-size chunks
 * are filled once and sent from in place (sendmsg() takes several at a
 * time), and every chunk has the same size, so a freed one can serve any
 * later need. The pool's cache bound keeps a burst from pinning memory.
 */
#include <assert.h>
#include <errno.h>
#include <string.h>

#include "buf_internal.h"
#include "iomux/buf.h"
#include "loop_internal.h"

struct iomux_buf_chunk {
    struct iomux_buf_chunk *next;
    size_t start; /* first unsent byte */
    size_t end;   /* one past the last byte written */
    char data[];  /* pool->chunk_size bytes */
};

struct iomux_buf_pool {
    size_t chunk_size;
    size_t read_size;
    size_t read_cap;  /* 0, or what iomux_buf_pool_read_buffer() offers instead */
    size_t cache_max; /* chunks */
    struct iomux_buf_chunk *cache;
    size_t cached;
    size_t in_use;
    size_t allocs;
    char *read_buf;                        /* allocated on first use */
    struct iomux__stream_cfg *stream_cfgs; /* stream.c's, see buf_internal.h */
};

struct iomux__stream_cfg **iomux__buf_pool_stream_cfgs(struct iomux_buf_pool *pool)
{
    return &pool->stream_cfgs;
}

size_t iomux__buf_pool_chunk_size(const struct iomux_buf_pool *pool)
{
    return pool->chunk_size;
}

int iomux_buf_pool_new(struct iomux_buf_pool **out, const struct iomux_buf_pool_options *opts)
{
    if (!out)
        return -EINVAL;
    size_t chunk = opts && opts->chunk_size ? opts->chunk_size : IOMUX_BUF_CHUNK_SIZE;
    size_t rsize = opts && opts->read_size ? opts->read_size : IOMUX_BUF_READ_SIZE;
    size_t cache = opts && opts->cache_bytes ? opts->cache_bytes : IOMUX_BUF_CACHE_BYTES;
    if (chunk > ((size_t)1 << 30) || rsize > ((size_t)1 << 30))
        return -EINVAL;
    struct iomux_buf_pool *pool = iomux__calloc(1, sizeof(*pool));
    if (!pool)
        return -ENOMEM;
    pool->chunk_size = chunk;
    pool->read_size = rsize;
    pool->cache_max = cache / chunk;
    *out = pool;
    return 0;
}

void iomux_buf_pool_trim(struct iomux_buf_pool *pool)
{
    while (pool->cache) {
        struct iomux_buf_chunk *c = pool->cache;
        pool->cache = c->next;
        iomux__free(c);
    }
    pool->cached = 0;
}

void iomux_buf_pool_free(struct iomux_buf_pool *pool)
{
    if (!pool)
        return;
    assert(pool->in_use == 0 && "a buffer still holds chunks of this pool");
    assert(!pool->stream_cfgs && "a stream of this pool is still open");
    iomux_buf_pool_trim(pool);
    iomux__free(pool->read_buf);
    iomux__free(pool);
}

char *iomux_buf_pool_read_buffer(struct iomux_buf_pool *pool, size_t *size)
{
    if (!pool->read_buf) {
        pool->read_buf = iomux__malloc(pool->read_size);
        if (!pool->read_buf)
            return NULL;
    }
    if (size)
        *size =
            pool->read_cap && pool->read_cap < pool->read_size ? pool->read_cap : pool->read_size;
    return pool->read_buf;
}

void iomux_buf_pool_set_read_cap(struct iomux_buf_pool *pool, size_t cap)
{
    pool->read_cap = cap;
}

void iomux_buf_pool_stats(const struct iomux_buf_pool *pool, struct iomux_buf_pool_stats *out)
{
    out->chunks_in_use = pool->in_use;
    out->chunks_cached = pool->cached;
    out->chunk_allocs = pool->allocs;
    out->read_size = pool->read_buf ? pool->read_size : 0;
    out->chunk_size = pool->chunk_size;
}

static struct iomux_buf_chunk *chunk_get(struct iomux_buf_pool *pool)
{
    struct iomux_buf_chunk *c = pool->cache;
    if (c) {
        pool->cache = c->next;
        pool->cached--;
    } else {
        c = iomux__malloc(sizeof(*c) + pool->chunk_size);
        if (!c)
            return NULL;
        pool->allocs++;
    }
    c->next = NULL;
    c->start = c->end = 0;
    pool->in_use++;
    return c;
}

static void chunk_put(struct iomux_buf_pool *pool, struct iomux_buf_chunk *c)
{
    pool->in_use--;
    if (pool->cached < pool->cache_max) {
        c->next = pool->cache;
        pool->cache = c;
        pool->cached++;
    } else {
        iomux__free(c);
    }
}

void iomux_buf_init(struct iomux_buf *buf, struct iomux_buf_pool *pool)
{
    buf->pool = pool;
    buf->head = buf->tail = NULL;
    buf->len = 0;
}

size_t iomux_buf_len(const struct iomux_buf *buf)
{
    return buf->len;
}

int iomux_buf_append(struct iomux_buf *buf, const void *bytes, size_t len)
{
    struct iomux_buf_pool *pool = buf->pool;
    const char *src = bytes;
    size_t room = buf->tail ? pool->chunk_size - buf->tail->end : 0;

    if (len == 0)
        return 0;
    /* Take every chunk needed before copying anything, so that running out
       of memory leaves the buffer as it was. */
    struct iomux_buf_chunk *first = NULL, *last = NULL;
    for (size_t need = len > room ? len - room : 0; need > 0;) {
        struct iomux_buf_chunk *c = chunk_get(pool);
        if (!c) {
            while (first) {
                struct iomux_buf_chunk *next = first->next;
                chunk_put(pool, first);
                first = next;
            }
            return -ENOMEM;
        }
        if (last)
            last->next = c;
        else
            first = c;
        last = c;
        need -= need < pool->chunk_size ? need : pool->chunk_size;
    }

    if (room > 0) {
        size_t n = len < room ? len : room;
        memcpy(buf->tail->data + buf->tail->end, src, n);
        buf->tail->end += n;
        src += n;
        buf->len += n;
        len -= n;
    }
    if (first) {
        if (buf->tail)
            buf->tail->next = first;
        else
            buf->head = first;
        buf->tail = last;
        for (struct iomux_buf_chunk *c = first; c && len > 0; c = c->next) {
            size_t n = len < pool->chunk_size ? len : pool->chunk_size;
            memcpy(c->data, src, n);
            c->end = n;
            src += n;
            buf->len += n;
            len -= n;
        }
    }
    return 0;
}

int iomux_buf_iov(const struct iomux_buf *buf, struct iovec *iov, int max)
{
    int n = 0;
    for (struct iomux_buf_chunk *c = buf->head; c && n < max; c = c->next) {
        if (c->end == c->start)
            continue;
        iov[n].iov_base = c->data + c->start;
        iov[n].iov_len = c->end - c->start;
        n++;
    }
    return n;
}

size_t iomux_buf_peek(const struct iomux_buf *buf, void *dst, size_t len)
{
    char *out = dst;
    size_t done = 0;
    for (struct iomux_buf_chunk *c = buf->head; c && done < len; c = c->next) {
        size_t avail = c->end - c->start;
        size_t n = len - done < avail ? len - done : avail;
        memcpy(out + done, c->data + c->start, n);
        done += n;
    }
    return done;
}

void iomux_buf_consume(struct iomux_buf *buf, size_t len)
{
    assert(len <= buf->len);
    if (len > buf->len)
        len = buf->len;
    buf->len -= len;
    while (buf->head) {
        struct iomux_buf_chunk *c = buf->head;
        size_t avail = c->end - c->start;
        if (len < avail) {
            c->start += len;
            break;
        }
        len -= avail;
        /* A drained chunk goes back to the pool at once, even the tail:
           keeping a half-used tail would pin a chunk per idle stream. */
        buf->head = c->next;
        if (!buf->head)
            buf->tail = NULL;
        chunk_put(buf->pool, c);
    }
}

void iomux_buf_clear(struct iomux_buf *buf)
{
    iomux_buf_consume(buf, buf->len);
}
