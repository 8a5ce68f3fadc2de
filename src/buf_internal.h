/* SPDX-License-Identifier: MIT */
/*
 * buf_internal.h - what stream.c keeps in a buffer pool besides chunks.
 *
 * Streams of one pool share their configuration (callbacks, watermarks)
 * through a list the pool holds for them; the pool only stores the list
 * head, so that buf.c need not know what a stream is.
 */
#ifndef IOMUX_BUF_INTERNAL_H
#define IOMUX_BUF_INTERNAL_H

#include "iomux/buf.h"

struct iomux__stream_cfg; /* private to stream.c */

/* The head of the pool's list of stream configs (NULL when empty). */
struct iomux__stream_cfg **iomux__buf_pool_stream_cfgs(struct iomux_buf_pool *pool);

/* Payload bytes per chunk: a stream with a transport offers at most this
   much per write, so that a retried write finds its bytes in the queue's
   first chunk (see iomux_stream_transport in stream.h). */
size_t iomux__buf_pool_chunk_size(const struct iomux_buf_pool *pool);

#endif /* IOMUX_BUF_INTERNAL_H */
