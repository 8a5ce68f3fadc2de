/* SPDX-License-Identifier: MIT */
/*
 * faults.h - echod misbehaving on purpose: the fault settings of a
 * --listen (delay=, rate=, slice=, stall-after=, reset-after=,
 * close-after=, slow-close=, accept-delay=, corrupt=, p=), --udp-drop,
 * the seeded generator that makes a run replayable, and the per-connection
 * state that applies them.
 *
 * A connection of a fault listener moves its bytes through a stream
 * transport (iomux/stream.h) made here: the stream still queues (within
 * its high-water mark, so backpressure reaches the client), while the
 * transport decides how much of the queue may be sent now, and parks
 * (*wait = 0) until its one loop timer says the rest may go. Listeners
 * without faults have no transport: they pay nothing for this file.
 */
#ifndef ECHOD_FAULTS_H
#define ECHOD_FAULTS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct iomux_loop;
struct iomux_stream;

/* What can fire, in the order of the statistics line. */
enum fault_kind {
    FAULT_DELAY,        /* a received chunk held back before its echo */
    FAULT_RATE,         /* a connection's echo paced (counted once per connection) */
    FAULT_SLICE,        /* a connection's echo cut in pieces (once per connection) */
    FAULT_STALL,        /* a connection stalled after N bytes */
    FAULT_RESET,        /* a connection reset after N bytes */
    FAULT_CLOSE,        /* a connection closed (FIN) after N bytes */
    FAULT_SLOW_CLOSE,   /* the client's FIN answered late */
    FAULT_ACCEPT_DELAY, /* a new connection held before it was read */
    FAULT_CORRUPT,      /* a bit flipped in an echoed chunk */
    FAULT_DROP,         /* a datagram not echoed (--udp-drop) */
    FAULT_KINDS,
};

/* The names of the statistics line and --trace: "delay", "reset-after"... */
extern const char *const fault_names[FAULT_KINDS];

/* Probabilities as parts per million: exact for the percentages and the
   p= fractions people write (0.1, 1.5%), and drawn with integers. */
#define FAULT_PPM 1000000u

/* A listener's fault settings, parsed from its --listen. */
struct fault_spec {
    unsigned given; /* bit (1u << key index) per key given: duplicates, "any" */
    uint32_t delay_ms, jitter_ms;
    uint64_t rate; /* bytes per second; 0: no pacing */
    uint32_t slice, slice_ms;
    uint64_t stall_after, reset_after, close_after;
    uint32_t slow_close_ms, accept_delay_ms;
    uint32_t corrupt_ppm; /* of echoed chunks */
    uint32_t p_ppm;       /* of connections; FAULT_PPM unless p= */
};

/* True when the listener has any fault: its connections get the state. */
static inline bool fault_spec_active(const struct fault_spec *f)
{
    return f->given != 0;
}

/* The key `name` of a --listen, as an index for the two functions below,
   or -1 if it is not a fault key. */
int fault_key_find(const char *name);
/* The names of every fault key, ", "-separated, for a usage error. */
const char *fault_key_list(void);
/* What a value of key `k` looks like, for a usage error. */
const char *fault_key_values(int k);
/* Parses `value` of key `k` into `f`. 0, -1 (a bad value), -2 (given twice). */
int fault_key_parse(struct fault_spec *f, int k, const char *value);
/* After the whole --listen: p= needs a fault to apply to. 0, or -1 with
   the reason in `why`. */
int fault_spec_check(const struct fault_spec *f, const char **why);
/* "delay=50±10,reset-after=4096" for the start-up line, into buf. */
void fault_spec_format(const struct fault_spec *f, char *buf, size_t size);

/* Parses a percentage "P" (0 to 100, decimals allowed) into parts per
   million; -1 if it is not one. */
int fault_parse_percent(const char *text, uint32_t *ppm);

/* The generator: splitmix64, which any seed (even 0) starts well; one per
   connection, seeded from the run's seed and the connection's number, so
   that a run's faults replay whatever the timing. */
static inline uint64_t fault_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* True with probability ppm / FAULT_PPM. */
static inline bool fault_chance(uint64_t *state, uint32_t ppm)
{
    return ppm >= FAULT_PPM || (ppm && fault_rand(state) % FAULT_PPM < ppm);
}

/* A seed for a run without --fault-seed (printed, to be replayed). */
uint64_t fault_new_seed(void);

/* What the connections of one engine share: owned by the engine. */
struct fault_env {
    struct iomux_loop *loop;
    uint64_t *counts; /* FAULT_KINDS counters, the policy's */
    uint64_t seed;
    uint64_t serial; /* fault connections so far: each one's stream of draws */
    /* With workers, the process's count instead: the n-th connection draws the same
       faults whichever worker takes it, so that a seed replays a run. */
    atomic_uint_fast64_t *shared_serial;
    /* With --trace: a fault fired on the connection whose state is
       `conn_state` (fault_conn_owner() gives what it was made with). */
    void (*fired)(void *ctx, void *owner, enum fault_kind kind, uint64_t bytes);
    void *ctx;
};

/* One connection's fault state: inside the stream's extra space. */
struct fault_conn;

/* Bytes of a struct fault_conn (it sits in memory the engine gives). */
size_t fault_conn_size(void);

/*
 * Starts the faults of `spec` (borrowed: the options outlive every
 * connection) on `stream` with its socket `fd`, in `mem` (fault_conn_size()
 * bytes, zeroed, 8-byte aligned, living as long as the stream). `owner` is
 * passed back to env->fired. Draws whether this connection is one of p=;
 * if not, returns 0 and nothing is set. Returns 1 when the stream moves its
 * bytes through the faults, or -errno (then the stream is as before).
 */
int fault_conn_start(void *mem, struct fault_env *env, const struct fault_spec *spec,
                     struct iomux_stream *stream, int fd, void *owner);

#endif /* ECHOD_FAULTS_H */
