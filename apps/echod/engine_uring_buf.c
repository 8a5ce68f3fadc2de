/* SPDX-License-Identifier: MIT */
/*
 * engine_uring_buf.c - the io_uring engine's receive buffers: made once
 * (step 1 of the life of a buffer in engine_uring.c), handed to the kernel
 * through a provided-buffer ring a window at a time (step 4), the window
 * following what the batches take (step 5).
 */
#include "engine_uring_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Step 5: the window follows what a batch takes: it doubles once after a
   batch that ran the ring dry, however many receives found it empty. */
static void size_window(struct engine_uring *e)
{
    if (e->ran_dry && e->window < e->buf_count) {
        e->window *= 2;
        e->window_grew = true;
    }
    e->ran_dry = false;
    if (e->taken > e->taken_peak)
        e->taken_peak = e->taken;
    e->taken = 0;
    uint64_t now = now_ms(e);
    if (now - e->window_checked < 1000)
        return;
    if (!e->window_grew && e->window > WINDOW_MIN && e->taken_peak * 4 <= e->window)
        e->window /= 2;
    e->window_checked = now;
    e->window_grew = false;
    e->taken_peak = 0;
}

/* Step 4: once per batch, the ring is topped up to the window from the
   top of the free stack (the most recently used buffers, still warm). */
void uring_publish(struct engine_uring *e)
{
    size_window(e);
    unsigned window = uring_budget_window(e);
    unsigned n = 0, mask = (unsigned)io_uring_buf_ring_mask(e->buf_count);
    while (e->in_ring + n < window && e->nfree > 0) {
        unsigned bid = e->free_bids[--e->nfree];
        io_uring_buf_ring_add(e->br, buf_addr(e, bid), (unsigned)e->buf_size, (unsigned short)bid,
                              (int)mask, (int)n);
        n++;
    }
    if (n) {
        io_uring_buf_ring_advance(e->br, (int)n);
        e->in_ring += n;
    }
}

static void *map_zeroed(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Step 1: the buffers and the ring that hands them to the kernel, which
   is registered with e->ring. 0 or -errno; uring_bufs_free() releases
   what was made either way, once the ring has been torn down. */
int uring_bufs_init(struct engine_uring *e)
{
    e->br_bytes = e->buf_count * sizeof(struct io_uring_buf);
    e->bufs_bytes = (size_t)e->buf_count * e->buf_size;
    e->br = map_zeroed(e->br_bytes);
    e->bufs = map_zeroed(e->bufs_bytes);
    e->free_bids = calloc(e->buf_count, sizeof(*e->free_bids));
    if (!e->br || !e->bufs || !e->free_bids)
        return -ENOMEM;
    io_uring_buf_ring_init(e->br);
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (uint64_t)(uintptr_t)e->br;
    reg.ring_entries = e->buf_count;
    reg.bgid = BGID;
    int rc = io_uring_register_buf_ring(&e->ring, &reg, 0);
    if (rc < 0)
        return rc;
    e->held = e->buf_count;
    for (unsigned i = e->buf_count; i-- > 0;)
        recycle(e, i); /* buffer 0 on top */
    e->window = e->buf_count < WINDOW_MIN ? e->buf_count : WINDOW_MIN;
    e->window_checked = now_ms(e);
    uring_publish(e);
    return 0;
}

/* After io_uring_queue_exit(): the ring may still have the buffer ring
   registered until then. */
void uring_bufs_free(struct engine_uring *e)
{
    if (e->br)
        munmap(e->br, e->br_bytes);
    if (e->bufs)
        munmap(e->bufs, e->bufs_bytes);
    free(e->free_bids);
    e->br = NULL;
    e->bufs = NULL;
    e->free_bids = NULL;
}
