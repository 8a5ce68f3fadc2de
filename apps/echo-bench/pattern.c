/* SPDX-License-Identifier: MIT */
/* pattern.c - the content pattern and checker; see pattern.h. */
#include "pattern.h"

#include <string.h>

/* xorshift64*: small, fast, and good enough to make bytes look random. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

void pattern_init(struct pattern *p, uint64_t seed)
{
    uint64_t state = seed ? seed : 0x9E3779B97F4A7C15ULL;
    for (unsigned i = 0; i < PATTERN_PERIOD; i++) {
        unsigned char b;
        /* Re-draw until the byte differs from its neighbours (the last one
           also from the first, since the stream wraps around): a byte
           equal to its neighbour would hide a swap or a drop there. */
        do {
            b = (unsigned char)(next_random(&state) >> 56);
        } while ((i > 0 && b == p->bytes[i - 1]) || (i == PATTERN_PERIOD - 1 && b == p->bytes[0]));
        p->bytes[i] = b;
    }
    memcpy(p->bytes + PATTERN_PERIOD, p->bytes, PATTERN_PERIOD);
}

const unsigned char *pattern_at(const struct pattern *p, uint64_t offset, size_t *len)
{
    size_t at = (size_t)(offset % PATTERN_PERIOD);
    *len = 2 * PATTERN_PERIOD - at;
    return p->bytes + at;
}

void pattern_fill(const struct pattern *p, uint64_t offset, void *buf, size_t len)
{
    unsigned char *out = buf;
    while (len > 0) {
        size_t avail;
        const unsigned char *src = pattern_at(p, offset, &avail);
        size_t n = len < avail ? len : avail;
        memcpy(out, src, n);
        out += n;
        offset += n;
        len -= n;
    }
}

size_t pattern_check(const struct pattern *p, uint64_t offset, const void *buf, size_t len)
{
    const unsigned char *in = buf;
    size_t done = 0;
    while (done < len) {
        size_t avail;
        const unsigned char *want = pattern_at(p, offset + done, &avail);
        size_t n = len - done < avail ? len - done : avail;
        /* memcmp is the fast path; the byte loop only runs to find where
           a mismatch it reported is. */
        if (memcmp(in + done, want, n) != 0) {
            for (size_t i = 0; i < n; i++)
                if (in[done + i] != want[i])
                    return done + i;
        }
        done += n;
    }
    return len;
}

uint64_t pattern_start(uint64_t id)
{
    /* A stride coprime with the period spreads connections over the whole
       table; 4099 apart, a stream would have to lose thousands of bytes to
       look like its neighbour's. */
    return (id * 4099u) % PATTERN_PERIOD;
}
