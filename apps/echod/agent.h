/* SPDX-License-Identifier: MIT */
/*
 * agent.h - the HAProxy agent-check responder (--agent): what echod says
 * about itself, as pure functions (unit-tested without a socket), and the
 * port that says it (agent.c, on sideport.c).
 *
 * HAProxy's agent-check connects, reads one line (ended by '\n') of words
 * separated by spaces, and closes. The words echod uses: "up" (the server
 * is up) and "ready" (cancels an earlier drain or maint), a weight "N%" of
 * the configured one, "drain" (no new connections but persistent ones) and
 * "maint" (no new connections at all).
 */
#ifndef ECHOD_AGENT_H
#define ECHOD_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum agent_state {
    AGENT_UP,    /* serving: "up ready" */
    AGENT_DRAIN, /* a graceful shutdown has begun (SIGTERM, SIGINT) */
    AGENT_MAINT, /* --max-conns reached: new clients would be refused */
    AGENT_STATES,
};

static inline const char *agent_state_name(enum agent_state state)
{
    return state == AGENT_DRAIN ? "drain" : state == AGENT_MAINT ? "maint" : "up";
}

/* Draining wins: a server on its way out says so even when full. */
static inline enum agent_state agent_state_of(bool stopping, uint64_t open, uint64_t max_conns)
{
    if (stopping)
        return AGENT_DRAIN;
    if (max_conns && open >= max_conns)
        return AGENT_MAINT;
    return AGENT_UP;
}

/* The weight in percent of the configured one: the share of --max-conns
   still free, rounded up, so a server with one free slot says 1%, not 0%
   (which HAProxy takes as drain). 0 means "say no weight": without
   --max-conns there is no measure of full. */
static inline unsigned agent_weight(uint64_t open, uint64_t max_conns)
{
    if (!max_conns || open >= max_conns)
        return 0;
    return (unsigned)((100 * (max_conns - open) + max_conns - 1) / max_conns);
}

/* The line for `state` and `weight` (0: none) in `out`; its length. */
static inline size_t agent_reply(enum agent_state state, unsigned weight, char *out, size_t size)
{
    int n;
    if (state == AGENT_UP && weight)
        n = snprintf(out, size, "up ready %u%%\n", weight);
    else if (state == AGENT_UP)
        n = snprintf(out, size, "up ready\n");
    else
        n = snprintf(out, size, "%s\n", agent_state_name(state));
    return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}

struct echod;

/* echod's state, as the agent says it (and the exporter shows it). */
enum agent_state echod_agent_state(const struct echod *d);

/* Serves --agent on the listening socket `fd` (taken) on d's loop: each
   connection gets the line and is closed. 0 or -errno. */
int echod_agent_start(struct echod *d, int fd);

#endif /* ECHOD_AGENT_H */
