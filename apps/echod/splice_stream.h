/* SPDX-License-Identifier: MIT */
/*
 * splice_stream.h - a readiness-engine connection echoed with splice():
 * an iomux stream transport (stream.h) that moves the client's bytes
 * socket -> pipe -> socket itself and never hands them to the stream.
 */
#ifndef ECHOD_SPLICE_STREAM_H
#define ECHOD_SPLICE_STREAM_H

#include <stdint.h>

#include <iomux/stream.h>

#include "splice_pool.h"

/* Where a spliced connection counts what it moves: the policy's byte
   counters, as the copying path adds to them. */
struct splice_counters {
    uint64_t *bytes_in;
    uint64_t *bytes_out;
};

/*
 * Splices `s` from its next read on: nothing may be queued on it. Pipes
 * come from `pool` one round at a time; without one, the connection
 * copies (recv()/send() through the same transport) for that read.
 * 0, -ENOMEM, or -EINVAL (the stream is ending, failed, or has a
 * transport or queued bytes already): it then goes on copying as before.
 */
int splice_stream_start(struct iomux_stream *s, struct splice_pool *pool,
                        const struct splice_counters *counters);

#endif /* ECHOD_SPLICE_STREAM_H */
