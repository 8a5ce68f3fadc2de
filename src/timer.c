/* SPDX-License-Identifier: MIT */
/*
 * timer.c - timers as a binary min-heap over a slab of slots.
 *
 * Ids name a slot and its generation, so an id that fired or was cancelled
 * is refused even after its slot was reused. The heap is ordered by
 * (deadline, insertion sequence): equal deadlines fire in the order they
 * were added, and a pass only runs timers added before it started, so a
 * zero-delay timer that re-adds itself cannot starve I/O.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "loop_internal.h"

#define NS_PER_MS 1000000u

void iomux__timers_init(struct iomux__timers *timers)
{
    *timers = (struct iomux__timers){.running = IOMUX__TIMER_IDLE};
}

void iomux__timers_fini(struct iomux__timers *timers)
{
    iomux__free(timers->slots);
    iomux__free(timers->heap);
    iomux__free(timers->free_list);
    iomux__timers_init(timers);
}

/* Milliseconds to nanoseconds from `base`, saturating: a delay of
   UINT64_MAX ms is "never", not a wrapped-around "soon". */
static uint64_t deadline_after(uint64_t base, uint64_t delay_ms)
{
    if (delay_ms > (UINT64_MAX - base) / NS_PER_MS)
        return UINT64_MAX;
    return base + delay_ms * NS_PER_MS;
}

static bool before(const struct iomux__timers *t, uint32_t a, uint32_t b)
{
    const struct iomux__timer *x = &t->slots[a], *y = &t->slots[b];
    return x->deadline_ns < y->deadline_ns || (x->deadline_ns == y->deadline_ns && x->seq < y->seq);
}

static void heap_place(struct iomux__timers *t, uint32_t pos, uint32_t slot)
{
    t->heap[pos] = slot;
    t->slots[slot].heap_pos = pos;
}

static void sift_up(struct iomux__timers *t, uint32_t pos)
{
    uint32_t slot = t->heap[pos];
    while (pos > 0) {
        uint32_t parent = (pos - 1) / 2;
        if (!before(t, slot, t->heap[parent]))
            break;
        heap_place(t, pos, t->heap[parent]);
        pos = parent;
    }
    heap_place(t, pos, slot);
}

static void sift_down(struct iomux__timers *t, uint32_t pos)
{
    uint32_t slot = t->heap[pos];
    for (;;) {
        uint32_t child = 2 * pos + 1;
        if (child >= t->nheap)
            break;
        if (child + 1 < t->nheap && before(t, t->heap[child + 1], t->heap[child]))
            child++;
        if (!before(t, t->heap[child], slot))
            break;
        heap_place(t, pos, t->heap[child]);
        pos = child;
    }
    heap_place(t, pos, slot);
}

static void heap_push(struct iomux__timers *t, uint32_t slot)
{
    t->slots[slot].seq = t->next_seq++;
    t->nheap++;
    heap_place(t, t->nheap - 1, slot);
    sift_up(t, t->nheap - 1);
}

static void heap_remove(struct iomux__timers *t, uint32_t pos)
{
    uint32_t slot = t->heap[pos];
    t->nheap--;
    if (pos != t->nheap) {
        heap_place(t, pos, t->heap[t->nheap]);
        /* The moved element may belong above or below its new place. */
        if (pos > 0 && before(t, t->heap[pos], t->heap[(pos - 1) / 2]))
            sift_up(t, pos);
        else
            sift_down(t, pos);
    }
    t->slots[slot].heap_pos = IOMUX__TIMER_IDLE;
}

static void slot_release(struct iomux__timers *t, uint32_t slot)
{
    t->slots[slot].cb = NULL;
    t->slots[slot].gen++;
    t->free_list[t->nfree++] = slot;
}

/* Makes room for one more slot; the three arrays grow together so that
   heap and free list can never overflow. */
static int reserve(struct iomux__timers *t)
{
    if (t->nfree > 0 || t->nslots < t->cap)
        return 0;
    if (t->cap >= UINT32_MAX / 2)
        return -ENOMEM;
    uint32_t cap = t->cap ? t->cap * 2 : 16;
    struct iomux__timer *slots = iomux__reallocarray(t->slots, cap, sizeof *slots);
    if (!slots)
        return -ENOMEM;
    /* New slots start at generation 0; add() makes that 1. */
    memset(slots + t->cap, 0, (cap - t->cap) * sizeof *slots);
    t->slots = slots;
    uint32_t *heap = iomux__reallocarray(t->heap, cap, sizeof *heap);
    if (!heap)
        return -ENOMEM;
    t->heap = heap;
    uint32_t *free_list = iomux__reallocarray(t->free_list, cap, sizeof *free_list);
    if (!free_list)
        return -ENOMEM;
    t->free_list = free_list;
    t->cap = cap;
    return 0;
}

int iomux_timer_add(struct iomux_loop *loop, uint64_t delay_ms, uint64_t repeat_ms,
                    iomux_timer_cb *cb, void *data, uint64_t *id)
{
    struct iomux__timers *t = &loop->timers;
    if (!cb)
        return -EINVAL;
    int rc = reserve(t);
    if (rc < 0)
        return rc;
    uint32_t slot = t->nfree > 0 ? t->free_list[--t->nfree] : t->nslots++;
    struct iomux__timer *timer = &t->slots[slot];
    if (timer->gen == 0)
        timer->gen = 1; /* keeps ids non-zero */
    /* A fresh clock, not the loop's cached one: measured from the cached
       time, a timer added late in an iteration would fire early. */
    timer->deadline_ns = deadline_after(iomux__clock_ns(), delay_ms);
    timer->repeat_ns = repeat_ms > UINT64_MAX / NS_PER_MS ? UINT64_MAX : repeat_ms * NS_PER_MS;
    timer->cb = cb;
    timer->data = data;
    heap_push(t, slot);
    if (id)
        *id = (uint64_t)timer->gen << 32 | (uint64_t)(slot + 1);
    return 0;
}

int iomux_timer_cancel(struct iomux_loop *loop, uint64_t id)
{
    struct iomux__timers *t = &loop->timers;
    uint64_t low = id & UINT32_MAX;
    if (low == 0 || low > t->nslots)
        return -ENOENT;
    uint32_t slot = (uint32_t)(low - 1);
    struct iomux__timer *timer = &t->slots[slot];
    if (!timer->cb || timer->gen != (uint32_t)(id >> 32))
        return -ENOENT;
    if (slot == t->running) {
        /* Its callback is on the stack: the run loop frees it after. */
        if (t->running_cancelled)
            return -ENOENT;
        t->running_cancelled = true;
        return 0;
    }
    heap_remove(t, timer->heap_pos);
    slot_release(t, slot);
    return 0;
}

int iomux__timers_timeout(const struct iomux_loop *loop)
{
    const struct iomux__timers *t = &loop->timers;
    if (t->nheap == 0)
        return -1;
    uint64_t deadline = t->slots[t->heap[0]].deadline_ns;
    if (deadline <= loop->now_ns)
        return 0;
    /* Round up: waking a little late is allowed, early is not. */
    uint64_t ms = (deadline - loop->now_ns + NS_PER_MS - 1) / NS_PER_MS;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

int iomux__timers_run(struct iomux_loop *loop)
{
    struct iomux__timers *t = &loop->timers;
    uint64_t seq_limit = t->next_seq;
    int ran = 0;
    while (t->nheap > 0) {
        uint32_t slot = t->heap[0];
        struct iomux__timer *timer = &t->slots[slot];
        if (timer->deadline_ns > loop->now_ns || timer->seq >= seq_limit)
            break;
        heap_remove(t, 0);
        t->running = slot;
        t->running_cancelled = false;
        uint64_t id = (uint64_t)timer->gen << 32 | (uint64_t)(slot + 1);
        timer->cb(loop, id, timer->data);
        ran++;
        /* The callback may have added timers: the slab may have moved. */
        timer = &t->slots[slot];
        t->running = IOMUX__TIMER_IDLE;
        if (timer->repeat_ns && !t->running_cancelled) {
            /* From the time the callback ended, so runs are never
               closer together than repeat_ms. */
            uint64_t now = iomux__clock_ns();
            timer->deadline_ns =
                now > UINT64_MAX - timer->repeat_ns ? UINT64_MAX : now + timer->repeat_ns;
            heap_push(t, slot);
        } else {
            slot_release(t, slot);
        }
    }
    return ran;
}
