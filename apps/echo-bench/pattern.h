/* SPDX-License-Identifier: MIT */
/*
 * pattern.h - the content every echo-bench connection sends, and the check
 * of what comes back.
 *
 * A connection's byte stream is an endless walk through one pseudo-random
 * table of PATTERN_PERIOD bytes (a prime), starting at an offset of its
 * own. Neighbouring bytes of the table always differ, so a flipped,
 * dropped, duplicated or swapped byte is caught at the first byte it
 * touches; a stream from another connection starts elsewhere in the table,
 * so crossed connections are caught too. The table is stored twice in a
 * row: a send or a check of up to PATTERN_PERIOD bytes is one memcpy- or
 * memcmp-style pass over contiguous memory, with no per-byte arithmetic
 * and no copy on the send path.
 */
#ifndef ECHO_BENCH_PATTERN_H
#define ECHO_BENCH_PATTERN_H

#include <stddef.h>
#include <stdint.h>

#define PATTERN_PERIOD 65521u /* the largest prime below 2^16 */

struct pattern {
    unsigned char bytes[2 * PATTERN_PERIOD];
};

/* Fills the table from `seed`; read-only afterwards, so threads share it. */
void pattern_init(struct pattern *p, uint64_t seed);

/*
 * The bytes of the stream at `offset` (the connection's start included):
 * returns a pointer to them and stores in *len how many are contiguous
 * there (at least PATTERN_PERIOD).
 */
const unsigned char *pattern_at(const struct pattern *p, uint64_t offset, size_t *len);

/* Writes `len` bytes of the stream starting at `offset` into buf. */
void pattern_fill(const struct pattern *p, uint64_t offset, void *buf, size_t len);

/*
 * Compares `len` received bytes with the stream at `offset`. Returns `len`
 * when they all match, else the index of the first byte that differs.
 */
size_t pattern_check(const struct pattern *p, uint64_t offset, const void *buf, size_t len);

/* Where connection number `id` starts in the stream: 4099 bytes after the
   previous connection, modulo the period (distinct for 65,521 ids). */
uint64_t pattern_start(uint64_t id);

#endif /* ECHO_BENCH_PATTERN_H */
