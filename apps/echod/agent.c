/* SPDX-License-Identifier: MIT */
/*
 * agent.c - --agent: the HAProxy agent-check port (agent.h). Nothing is
 * read from the balancer (an agent-send string is ignored): the answer is
 * written on accept, and the connection closed.
 */
#include "agent.h"

#include "echod_internal.h"
#include "sideport.h"

/* HAProxy checks every couple of seconds per balancer and backend:
   more at once than this is a flood, not a balancer. */
#define AGENT_MAX_CONNS   64
#define AGENT_DEADLINE_MS 2000
#define AGENT_REPLY_MAX   32

enum agent_state echod_agent_state(const struct echod *d)
{
    return agent_state_of(d->draining, echod_conns_counted(d), d->opt->max_conns);
}

static size_t agent_answer(void *ctx, const char *head, size_t len, bool full, char *out,
                           size_t size)
{
    const struct echod *d = ctx;
    return agent_reply(echod_agent_state(d),
                       agent_weight(echod_conns_counted(d), d->opt->max_conns), out, size);
}

int echod_agent_start(struct echod *d, int fd)
{
    const struct sideport_config cfg = {
        .head_max = 0,
        .answer_max = AGENT_REPLY_MAX,
        .max_conns = AGENT_MAX_CONNS,
        .deadline_ms = AGENT_DEADLINE_MS,
        .answer = agent_answer,
        .ctx = d,
    };
    return sideport_new(d->loop, fd, &cfg, &d->agent);
}
