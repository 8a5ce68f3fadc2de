/* SPDX-License-Identifier: MIT */
/* churn.c - connection churn (--churn, --per-conn); see churn.h. */
#include "churn.h"

#include <errno.h>
#include <stdlib.h>

#include "conn.h"
#include "worker.h"

/* How often connects are checked against --connect-timeout. */
#define SWEEP_NS 10000000u

int churn_init(struct worker *w)
{
    struct churn *ch = calloc(1, sizeof *ch);
    if (ch == NULL)
        return -ENOMEM;
    ch->free_slots = calloc(w->n_conns ? w->n_conns : 1, sizeof *ch->free_slots);
    if (ch->free_slots == NULL) {
        free(ch);
        return -ENOMEM;
    }
    hdr_init(&ch->connect_hist);
    /* Slot 0 on top: the first connects use the first slots. */
    for (unsigned i = 0; i < w->n_conns; i++)
        ch->free_slots[ch->n_free++] = w->n_conns - 1 - i;
    const struct bench_options *o = w->shared->opt;
    ch->period_ns = (uint64_t)o->threads * 1000000000u / o->churn;
    ch->phase_ns = ch->period_ns * w->index / o->threads;
    w->churn = ch;
    return 0;
}

void churn_fini(struct worker *w)
{
    if (w->churn != NULL)
        free(w->churn->free_slots);
    free(w->churn);
    w->churn = NULL;
}

void churn_start(struct worker *w)
{
    w->churn->next_sweep_ns = w->shared->t_start_ns + SWEEP_NS;
}

/* Starts connection number `ch->started` of this worker in a free slot. */
static void churn_begin(struct worker *w, struct bench_conn *c, uint64_t now)
{
    struct churn *ch = w->churn;
    const struct bench_shared *s = w->shared;
    c->id = w->first_id + (unsigned)ch->started * w->id_stride;
    c->base = pattern_start(c->id);
    c->sent = c->queued = c->received = c->released = c->completed = 0;
    c->read_paused = 0;
    c->mask = 0;
    c->busy = 1;
    c->connect_ns = now;
    c->in_window = now >= s->t_measure_ns && now < s->t_end_ns;
    ch->attempts++;
    start_connect(c);
}

/* Connects not done within --connect-timeout have failed. */
static void sweep(struct worker *w, uint64_t now)
{
    uint64_t limit = w->shared->opt->connect_timeout_us * 1000u;
    for (unsigned i = 0; i < w->n_conns; i++) {
        struct bench_conn *c = &w->conns[i];
        if (c->busy && (c->state == CONN_CONNECTING || c->state == CONN_HANDSHAKE) &&
            now - c->connect_ns >= limit)
            connect_failed(c, ETIMEDOUT);
    }
}

uint64_t churn_tick(struct worker *w, uint64_t now)
{
    struct churn *ch = w->churn;
    const struct bench_shared *s = w->shared;
    uint64_t due = s->t_start_ns + ch->phase_ns + ch->started * ch->period_ns;
    /* A connect due while every slot is busy waits for the next free one. */
    while (due <= now && due < s->t_end_ns && ch->n_free > 0) {
        churn_begin(w, &w->conns[ch->free_slots[--ch->n_free]], now);
        ch->started++;
        due += ch->period_ns;
    }
    if (now >= ch->next_sweep_ns) {
        sweep(w, now);
        ch->next_sweep_ns = now + SWEEP_NS;
    }
    if (due >= s->t_end_ns || due <= now)
        return ch->next_sweep_ns; /* none due, or waiting for a slot */
    return due < ch->next_sweep_ns ? due : ch->next_sweep_ns;
}

void churn_opened(struct bench_conn *c, uint64_t now)
{
    struct worker *w = c->w;
    struct churn *ch = w->churn;
    const struct bench_options *o = w->shared->opt;
    ch->connected++;
    if (c->in_window)
        hdr_record(&ch->connect_hist, now - c->connect_ns);
    uint64_t first = o->depth < o->per_conn ? o->depth : o->per_conn;
    for (uint64_t k = 0; k < first && now < w->shared->t_end_ns; k++)
        release_closed(c, now);
    conn_flush(c);
}

void churn_finished(struct bench_conn *c)
{
    c->w->churn->finished++;
    conn_close(c);
}

void churn_failed(struct worker *w, int err)
{
    enum churn_failure kind = CHURN_OTHER;
    if (err == ECONNREFUSED)
        kind = CHURN_REFUSED;
    else if (err == ECONNRESET || err == EPIPE)
        kind = CHURN_RESET;
    else if (err == ETIMEDOUT)
        kind = CHURN_TIMED_OUT;
    else if (err == 0)
        kind = CHURN_CLOSED;
    w->churn->failures[kind]++;
}

void churn_free(struct bench_conn *c)
{
    struct churn *ch = c->w->churn;
    c->busy = 0;
    ch->free_slots[ch->n_free++] = (unsigned)(c - c->w->conns);
}
