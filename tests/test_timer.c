/* SPDX-License-Identifier: MIT */
/*
 * test_timer.c - timers on the backend named by argv[1]: deadline order with
 * ties in insertion order, never early, cancel from callbacks, repeat, huge
 * delays, 100,000 random timers, zero-delay timers that must not starve I/O,
 * and the errors of iomux_timer_add/cancel.
 */
#include "test_util.h"

static const char *backend;

/* One timer as the tests see it. */
struct tmr {
    uint64_t id;
    uint64_t delay_ms;
    uint64_t t_add_ns; /* mono_ns() just before iomux_timer_add */
    uint64_t t_fire_ns;
    int calls;
    int order; /* position in the firing sequence, from 0 */
};

static int fire_seq;

static void tmr_cb(struct iomux_loop *loop, uint64_t id, void *data)
{
    struct tmr *t = data;
    t->t_fire_ns = mono_ns();
    t->calls++;
    t->order = fire_seq++;
    if (t->id && t->id != id)
        t->order = -1000; /* wrong id: caught by the checks */
}

static bool tmr_add(struct iomux_loop *loop, struct tmr *t, uint64_t delay_ms, uint64_t repeat_ms)
{
    t->delay_ms = delay_ms;
    t->t_add_ns = mono_ns();
    if (!CHECK_OK(iomux_timer_add(loop, delay_ms, repeat_ms, tmr_cb, t, &t->id)))
        return false;
    return CHECK_U64(t->id, !=, 0);
}

/* Runs iterations (each at most 100 ms) until `n` timers of `t` fired. */
static bool run_until_fired(struct iomux_loop *loop, struct tmr *t, size_t n, int max_iter)
{
    for (int i = 0; i < max_iter; i++) {
        size_t fired = 0;
        for (size_t k = 0; k < n; k++)
            fired += t[k].calls > 0;
        if (fired == n)
            return true;
        if (!CHECK_COUNT(iomux_loop_run_once(loop, 100)))
            return false;
    }
    return false;
}

/*
 * Deadline order: timers added together fire by delay, equal delays in the
 * order they were added. Delays differ by at least 5 ms, so the order holds
 * unless adding them took that long (the round is then repeated).
 */
static void t_order(void)
{
    static const uint64_t delays[] = {40, 10, 25, 0, 10, 5, 40, 0, 25, 15, 5, 30, 10};
    enum { N = sizeof delays / sizeof delays[0] };
    for (int attempt = 0; attempt < 5; attempt++) {
        struct iomux_loop *loop = test_loop_new(backend, 0);
        if (!loop)
            return;
        struct tmr t[N] = {{0}};
        fire_seq = 0;
        uint64_t t0 = mono_ns();
        for (size_t i = 0; i < N; i++)
            tmr_add(loop, &t[i], delays[i], 0);
        bool slow = mono_ns() - t0 >= 4 * MS_NS;
        CHECK(run_until_fired(loop, t, N, 50));
        iomux_loop_free(loop);
        if (slow) {
            fprintf(stderr, "  adding took >= 4 ms (a busy machine?): round repeated\n");
            continue;
        }
        /* Expected position of timer i: those with a smaller delay, or an
           equal delay and added earlier, come first. */
        for (size_t i = 0; i < N; i++) {
            int pos = 0;
            for (size_t k = 0; k < N; k++)
                pos += delays[k] < delays[i] || (delays[k] == delays[i] && k < i);
            if (!CHECK_EQ_INT(t[i].order, pos))
                fprintf(stderr, "  timer %zu (delay %" PRIu64 " ms) fired at position %d\n", i,
                        delays[i], t[i].order);
            CHECK_EQ_INT(t[i].calls, 1);
        }
        return;
    }
    fprintf(stderr, "  machine too busy for 5 rounds: order not checked\n");
}

/* Never early: from just before iomux_timer_add to the callback, at least
   the delay has passed (nanosecond clock, no rounding allowed). Also for a
   timer added from a callback that worked for 15 ms (after update_time). */
struct late_add {
    struct tmr inner;
    int added;
};

static void busy_then_add_cb(struct iomux_loop *loop, uint64_t id, void *data)
{
    struct late_add *l = data;
    uint64_t until = mono_ns() + 15 * MS_NS;
    while (mono_ns() < until) {
    }
    iomux_loop_update_time(loop);
    l->inner.delay_ms = 7;
    l->inner.t_add_ns = mono_ns();
    l->added = iomux_timer_add(loop, 7, 0, tmr_cb, &l->inner, &l->inner.id) == 0;
}

static void t_never_early(void)
{
    static const uint64_t delays[] = {1, 2, 3, 5, 7, 10, 13, 20, 30, 1, 2, 3};
    enum { N = sizeof delays / sizeof delays[0] };
    struct iomux_loop *loop = test_loop_new(backend, 0);
    if (!loop)
        return;
    struct tmr t[N] = {{0}};
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < N; i++) {
            t[i] = (struct tmr){0};
            tmr_add(loop, &t[i], delays[i], 0);
        }
        CHECK(run_until_fired(loop, t, N, 100));
        for (size_t i = 0; i < N; i++) {
            uint64_t elapsed = t[i].t_fire_ns - t[i].t_add_ns;
            if (!CHECK_U64(elapsed, >=, delays[i] * MS_NS))
                fprintf(stderr, "  delay %" PRIu64 " ms fired after %.3f ms\n", delays[i],
                        (double)elapsed / 1e6);
        }
        /* Let the loop's cached clock go stale before the next round. */
        sleep_ms(3);
    }

    struct late_add l = {{0}, 0};
    uint64_t id;
    CHECK_OK(iomux_timer_add(loop, 1, 0, busy_then_add_cb, &l, &id));
    for (int i = 0; i < 50 && l.inner.calls == 0; i++)
        CHECK_COUNT(iomux_loop_run_once(loop, 100));
    CHECK(l.added);
    CHECK_EQ_INT(l.inner.calls, 1);
    CHECK_U64(l.inner.t_fire_ns - l.inner.t_add_ns, >=, 7 * MS_NS);
    iomux_loop_free(loop);
}

/* Cancel from callbacks: a repeating timer cancels itself (and never fires
   again); of two timers due in the same batch, each cancels the other, so
   exactly one runs. */
struct self_cancel {
    uint64_t id;
    int calls;
    int cancel_rc;
    int second_cancel_rc;
};

static void self_cancel_cb(struct iomux_loop *loop, uint64_t id, void *data)
{
    struct self_cancel *s = data;
    if (id != s->id)
        s->calls += 1000;
    if (++s->calls == 3) {
        s->cancel_rc = iomux_timer_cancel(loop, id);
        s->second_cancel_rc = iomux_timer_cancel(loop, id);
    }
}

struct pair {
    uint64_t id[2];
    int calls[2];
    int cancel_rc[2];
};

static struct pair *the_pair;

static void pair_cb(struct iomux_loop *loop, uint64_t id, void *data)
{
    struct pair *p = the_pair;
    int me = data == &p->calls[0] ? 0 : 1;
    p->calls[me]++;
    p->cancel_rc[me] = iomux_timer_cancel(loop, p->id[1 - me]);
}

static void t_cancel_in_callback(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    if (!loop)
        return;

    struct self_cancel s = {.cancel_rc = 1, .second_cancel_rc = 1};
    CHECK_OK(iomux_timer_add(loop, 1, 1, self_cancel_cb, &s, &s.id));
    for (int i = 0; i < 100 && s.calls < 3; i++)
        CHECK_COUNT(iomux_loop_run_once(loop, 100));
    CHECK_EQ_INT(s.calls, 3);
    CHECK_OK(s.cancel_rc);
    CHECK_ERRNO(s.second_cancel_rc, -ENOENT);
    for (int i = 0; i < 5; i++)
        CHECK_COUNT(iomux_loop_run_once(loop, 5));
    CHECK_EQ_INT(s.calls, 3);
    CHECK_ERRNO(iomux_timer_cancel(loop, s.id), -ENOENT);

    struct pair p = {.cancel_rc = {1, 1}};
    the_pair = &p;
    CHECK_OK(iomux_timer_add(loop, 5, 0, pair_cb, &p.calls[0], &p.id[0]));
    CHECK_OK(iomux_timer_add(loop, 5, 0, pair_cb, &p.calls[1], &p.id[1]));
    for (int i = 0; i < 50 && p.calls[0] + p.calls[1] == 0; i++)
        CHECK_COUNT(iomux_loop_run_once(loop, 100));
    for (int i = 0; i < 3; i++)
        CHECK_COUNT(iomux_loop_run_once(loop, 10));
    CHECK_EQ_INT(p.calls[0] + p.calls[1], 1);
    int winner = p.calls[0] ? 0 : 1;
    CHECK_OK(p.cancel_rc[winner]);
    CHECK_ERRNO(iomux_timer_cancel(loop, p.id[0]), -ENOENT);
    CHECK_ERRNO(iomux_timer_cancel(loop, p.id[1]), -ENOENT);
    the_pair = NULL;
    iomux_loop_free(loop);
}

/* Repeat: delay 5, repeat 10: the 4th run comes no sooner than 35 ms after
   the add; after cancel nothing more fires. */
static void t_repeat(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    if (!loop)
        return;
    struct tmr t = {0};
    uint64_t first_fire = 0;
    tmr_add(loop, &t, 5, 10);
    for (int i = 0; i < 100 && t.calls < 4; i++) {
        CHECK_COUNT(iomux_loop_run_once(loop, 100));
        if (t.calls == 1 && !first_fire)
            first_fire = t.t_fire_ns;
    }
    CHECK_EQ_INT(t.calls, 4);
    CHECK_U64(first_fire - t.t_add_ns, >=, 5 * MS_NS);
    CHECK_U64(t.t_fire_ns - t.t_add_ns, >=, 35 * MS_NS);
    CHECK_OK(iomux_timer_cancel(loop, t.id));
    CHECK_ERRNO(iomux_timer_cancel(loop, t.id), -ENOENT);
    for (int i = 0; i < 3; i++)
        CHECK_COUNT(iomux_loop_run_once(loop, 15));
    CHECK_EQ_INT(t.calls, 4);
    iomux_loop_free(loop);
}

/* Huge delays: UINT64_MAX (and neighbours) never fire and do not overflow
   into "now"; a huge repeat does not wrap into a tight repeat. */
static void t_huge_delays(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    if (!loop)
        return;
    static const uint64_t huge[] = {UINT64_MAX, UINT64_MAX - 1, INT64_MAX, (uint64_t)INT32_MAX + 1,
                                    UINT64_MAX / 1000000u + 1};
    enum { N = sizeof huge / sizeof huge[0] };
    struct tmr big[N] = {{0}}, small = {0}, rep = {0};
    for (size_t i = 0; i < N; i++)
        tmr_add(loop, &big[i], huge[i], 0);

    /* With only huge timers pending, a bounded wait still waits and ends. */
    uint64_t t0 = mono_ns();
    CHECK_EQ_INT(iomux_loop_run_once(loop, 20), 0);
    uint64_t dt = mono_ns() - t0;
    CHECK_U64(dt, >=, 10 * MS_NS);
    CHECK_U64(dt, <, 5000 * MS_NS);

    tmr_add(loop, &small, 10, 0);
    tmr_add(loop, &rep, 1, UINT64_MAX);
    CHECK(run_until_fired(loop, &small, 1, 50));
    for (int i = 0; i < 3; i++)
        CHECK_COUNT(iomux_loop_run_once(loop, 10));
    CHECK_EQ_INT(small.calls, 1);
    CHECK_EQ_INT(rep.calls, 1);
    for (size_t i = 0; i < N; i++) {
        CHECK_EQ_INT(big[i].calls, 0);
        CHECK_OK(iomux_timer_cancel(loop, big[i].id));
    }
    CHECK_OK(iomux_timer_cancel(loop, rep.id)); /* still pending, far away */
    CHECK_ERRNO(iomux_timer_cancel(loop, small.id), -ENOENT);
    iomux_loop_free(loop);
}

/*
 * 100,000 timers with random delays 0..50 ms: each fires exactly once, never
 * before its deadline, and in non-decreasing deadline order. The library
 * reads its clock inside iomux_timer_add, so a deadline is known to lie
 * between (clock before the add) + delay and (clock after the add) + delay;
 * an order violation is reported only when those ranges prove it.
 */
#define MANY 100000
static struct many {
    uint64_t lo, hi; /* deadline range, ns */
    uint64_t fired_ns;
    int calls;
} many[MANY];
static int many_last = -1;
static int many_order_errors, many_early;
static int many_fired;

static void many_cb(struct iomux_loop *loop, uint64_t id, void *data)
{
    struct many *m = data;
    m->fired_ns = mono_ns();
    m->calls++;
    many_fired++;
    if (m->fired_ns < m->lo)
        many_early++;
    if (many_last >= 0 && m->hi < many[many_last].lo) {
        if (many_order_errors++ < 5)
            fprintf(stderr,
                    "  timer %td (deadline <= %" PRIu64
                    ") fired after timer %d (deadline >= %" PRIu64 ")\n",
                    m - many, m->hi, many_last, many[many_last].lo);
    }
    many_last = (int)(m - many);
}

static void t_many(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    if (!loop)
        return;
    memset(many, 0, sizeof many);
    many_last = -1;
    many_order_errors = many_early = many_fired = 0;
    uint64_t seed = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < MANY; i++) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        uint64_t delay = seed % 51;
        uint64_t id;
        many[i].lo = mono_ns() + delay * MS_NS;
        int rc = iomux_timer_add(loop, delay, 0, many_cb, &many[i], &id);
        many[i].hi = mono_ns() + delay * MS_NS;
        if (!CHECK_OK(rc))
            break;
    }
    for (int i = 0; i < 10000 && many_fired < MANY; i++)
        if (!CHECK_COUNT(iomux_loop_run_once(loop, 100)))
            break;
    CHECK_COUNT(iomux_loop_run_once(loop, 0));
    int not_once = 0;
    for (int i = 0; i < MANY; i++)
        not_once += many[i].calls != 1;
    CHECK_EQ_INT(many_fired, MANY);
    CHECK_EQ_INT(not_once, 0);
    CHECK_EQ_INT(many_early, 0);
    CHECK_EQ_INT(many_order_errors, 0);
    iomux_loop_free(loop);
}

/*
 * A zero-delay timer that re-adds itself from its callback must not starve
 * I/O: each pass runs only the timers that were due when it started, so the
 * readable pipe is dispatched within a few iterations.
 */
struct starve {
    int timer_calls;
    int io_calls;
    int add_errors;
};

static void zero_cb(struct iomux_loop *loop, uint64_t id, void *data)
{
    struct starve *s = data;
    uint64_t next;
    /* The cap keeps a broken loop from running forever inside one pass;
       the per-iteration check below then fails. */
    if (++s->timer_calls < 100000)
        s->add_errors += iomux_timer_add(loop, 0, 0, zero_cb, s, &next) != 0;
}

static void starve_io_cb(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    struct starve *s = data;
    char buf[16];
    s->io_calls++;
    while (read(fd, buf, sizeof buf) > 0) {
    }
}

static void t_zero_delay_no_starvation(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    int p[2];
    if (!loop || !make_pipe(p))
        return;
    struct starve s = {0};
    uint64_t id;
    CHECK_OK(iomux_fd_watch(loop, p[0], IOMUX_READ, starve_io_cb, &s));
    CHECK_OK(iomux_timer_add(loop, 0, 0, zero_cb, &s, &id));
    CHECK_EQ_INT(write(p[1], "x", 1), 1);
    int iterations = 0, most_per_iteration = 0;
    while (s.io_calls == 0 && iterations < 10) {
        int before = s.timer_calls;
        if (!CHECK_COUNT(iomux_loop_run_once(loop, 0)))
            break;
        iterations++;
        if (s.timer_calls - before > most_per_iteration)
            most_per_iteration = s.timer_calls - before;
    }
    fprintf(stderr,
            "  pipe dispatched after %d iteration(s); at most %d timer run(s) per"
            " iteration\n",
            iterations, most_per_iteration);
    CHECK_EQ_INT(s.io_calls, 1);
    CHECK_INT(iterations, <=, 3);
    CHECK_INT(most_per_iteration, <=, 2);
    CHECK_EQ_INT(s.add_errors, 0);
    /* Timer and I/O keep taking turns. */
    CHECK_EQ_INT(write(p[1], "y", 1), 1);
    for (int i = 0; i < 3 && s.io_calls < 2; i++)
        CHECK_COUNT(iomux_loop_run_once(loop, 0));
    CHECK_EQ_INT(s.io_calls, 2);
    CHECK_OK(iomux_fd_unwatch(loop, p[0]));
    close(p[0]);
    close(p[1]);
    iomux_loop_free(loop);
}

/* An I/O callback cancels a timer that is due in the same iteration (timers
   run after I/O): it must not run. */
struct io_cancel {
    uint64_t id;
    int io_calls;
    int cancel_rc;
};

static void io_cancel_cb(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    struct io_cancel *c = data;
    char buf[8];
    c->io_calls++;
    while (read(fd, buf, sizeof buf) > 0) {
    }
    c->cancel_rc = iomux_timer_cancel(loop, c->id);
}

static void t_cancel_from_io(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    int p[2];
    if (!loop || !make_pipe(p))
        return;
    struct tmr t = {0};
    struct io_cancel c = {.cancel_rc = 1};
    tmr_add(loop, &t, 0, 0);
    c.id = t.id;
    CHECK_OK(iomux_fd_watch(loop, p[0], IOMUX_READ, io_cancel_cb, &c));
    CHECK_EQ_INT(write(p[1], "x", 1), 1);
    CHECK_EQ_INT(iomux_loop_run_once(loop, 0), 1);
    CHECK_EQ_INT(c.io_calls, 1);
    CHECK_OK(c.cancel_rc);
    CHECK_EQ_INT(iomux_loop_run_once(loop, 10), 0);
    CHECK_EQ_INT(t.calls, 0);
    CHECK_OK(iomux_fd_unwatch(loop, p[0]));
    close(p[0]);
    close(p[1]);
    iomux_loop_free(loop);
}

/* A timer callback adds 1,000 timers (the timer arrays grow under the
   running timer) and cancels every other one; the rest fire once. */
#define SPAWN 1000
struct spawner {
    struct tmr kids[SPAWN];
    int add_errors, cancel_errors;
};

static void spawn_cb(struct iomux_loop *loop, uint64_t id, void *data)
{
    struct spawner *s = data;
    for (int i = 0; i < SPAWN; i++) {
        s->kids[i].delay_ms = (uint64_t)(i % 3);
        s->kids[i].t_add_ns = mono_ns();
        s->add_errors +=
            iomux_timer_add(loop, s->kids[i].delay_ms, 0, tmr_cb, &s->kids[i], &s->kids[i].id) != 0;
    }
    for (int i = 0; i < SPAWN; i += 2)
        s->cancel_errors += iomux_timer_cancel(loop, s->kids[i].id) != 0;
}

static void t_add_from_callback(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    if (!loop)
        return;
    static struct spawner s;
    memset(&s, 0, sizeof s);
    struct tmr parent = {0};
    uint64_t id;
    CHECK_OK(iomux_timer_add(loop, 1, 0, spawn_cb, &s, &id));
    tmr_add(loop, &parent, 2, 0); /* a timer already in the heap meanwhile */
    CHECK_OK(iomux_loop_run(loop));
    CHECK_EQ_INT(s.add_errors, 0);
    CHECK_EQ_INT(s.cancel_errors, 0);
    int wrong = 0, early = 0;
    for (int i = 0; i < SPAWN; i++) {
        wrong += s.kids[i].calls != (i % 2 ? 1 : 0);
        if (s.kids[i].calls)
            early += s.kids[i].t_fire_ns - s.kids[i].t_add_ns < s.kids[i].delay_ms * MS_NS;
    }
    CHECK_EQ_INT(wrong, 0);
    CHECK_EQ_INT(early, 0);
    CHECK_EQ_INT(parent.calls, 1);
    iomux_loop_free(loop);
}

/* iomux_loop_now is CLOCK_MONOTONIC in ms, cached per iteration and
   refreshed by iomux_loop_update_time. */
static void t_now(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    if (!loop)
        return;
    uint64_t before = mono_ns() / MS_NS;
    CHECK_EQ_INT(iomux_loop_run_once(loop, 0), 0);
    uint64_t now = iomux_loop_now(loop);
    CHECK_U64(now, >=, before);
    CHECK_U64(now, <=, mono_ns() / MS_NS);
    sleep_ms(5);
    CHECK_EQ_U64(iomux_loop_now(loop), now); /* cached */
    iomux_loop_update_time(loop);
    CHECK_U64(iomux_loop_now(loop), >=, now + 5);
    CHECK_U64(iomux_loop_now(loop), <=, mono_ns() / MS_NS);
    iomux_loop_free(loop);
}

/* run_once counts the callbacks it ran; run() returns after the last timer. */
static void t_run_counts(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    if (!loop)
        return;
    struct tmr t[3] = {{0}};
    for (int i = 0; i < 3; i++)
        tmr_add(loop, &t[i], 0, 0);
    CHECK_EQ_INT(iomux_loop_run_once(loop, 0), 3);
    CHECK_EQ_INT(iomux_loop_run_once(loop, 0), 0);

    struct tmr a = {0}, b = {0};
    tmr_add(loop, &a, 5, 0);
    tmr_add(loop, &b, 15, 0);
    CHECK_OK(iomux_loop_run(loop));
    CHECK_EQ_INT(a.calls, 1);
    CHECK_EQ_INT(b.calls, 1);
    CHECK_U64(b.t_fire_ns - b.t_add_ns, >=, 15 * MS_NS);
    iomux_loop_free(loop);
}

static void t_errors(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    if (!loop)
        return;
    uint64_t id = 0;
    CHECK_ERRNO(iomux_timer_add(loop, 1, 0, NULL, NULL, &id), -EINVAL);
    CHECK_ERRNO(iomux_timer_cancel(loop, 0), -ENOENT);
    CHECK_ERRNO(iomux_timer_cancel(loop, 12345), -ENOENT);
    CHECK_ERRNO(iomux_timer_cancel(loop, UINT64_MAX), -ENOENT);
    struct tmr t = {0}, u = {0};
    tmr_add(loop, &t, 0, 0);
    CHECK(run_until_fired(loop, &t, 1, 10));
    CHECK_ERRNO(iomux_timer_cancel(loop, t.id), -ENOENT); /* fired */
    /* The slot of a fired timer may be reused: the old id stays dead. */
    tmr_add(loop, &u, 1000, 0);
    CHECK_U64(u.id, !=, t.id);
    CHECK_ERRNO(iomux_timer_cancel(loop, t.id), -ENOENT);
    CHECK_OK(iomux_timer_cancel(loop, u.id));
    CHECK_ERRNO(iomux_timer_cancel(loop, u.id), -ENOENT); /* cancelled */
    iomux_loop_free(loop);
}

int main(int argc, char **argv)
{
    alarm(30);
    backend = test_backend(argc, argv);
    check_run("deadline order", t_order);
    check_run("never early", t_never_early);
    check_run("cancel in callbacks", t_cancel_in_callback);
    check_run("repeat", t_repeat);
    check_run("huge delays", t_huge_delays);
    check_run("100,000 random timers", t_many);
    check_run("zero-delay timers do not starve I/O", t_zero_delay_no_starvation);
    check_run("cancel from an I/O callback", t_cancel_from_io);
    check_run("add from a timer callback", t_add_from_callback);
    check_run("iomux_loop_now", t_now);
    check_run("run_once counts, run returns", t_run_counts);
    check_run("errors", t_errors);
    return check_exit();
}
