/* SPDX-License-Identifier: MIT */
/*
 * steer.c - echod --steer cpu (steer.h): worker K pinned to the K-th CPU of the affinity mask,
 * and a classic BPF program on each TCP listener's SO_REUSEPORT group that maps the CPU which
 * processed a SYN (SKF_AD_CPU) to the index of that CPU's worker's socket in the group.
 */
#include "steer.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/filter.h>

#include "echod_internal.h"
#include "workers.h"

/* Any index past the group's sockets makes the kernel fall back to its hash. */
#define STEER_BY_HASH UINT32_MAX

int echod_steer_plan(struct echod_server *s)
{
    if (s->opt->steer != ECHOD_STEER_CPU)
        return 0;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) < 0) {
        int rc = -errno;
        fprintf(stderr, "echod: --steer cpu: the CPUs echod may run on: %s\n", strerror(-rc));
        return rc;
    }
    /* A worker per CPU at most: two pinned to one CPU would only take turns, and the program
       could steer to only one of them. */
    if ((unsigned)CPU_COUNT(&set) < s->nworkers) {
        echod_usage_error("--steer cpu: %u workers, but echod may run on %d CPUs (one worker per "
                          "CPU at most)",
                          s->nworkers, CPU_COUNT(&set));
        return -EINVAL;
    }
    s->cpus = calloc(s->nworkers, sizeof(*s->cpus));
    if (!s->cpus)
        return -ENOMEM;
    unsigned k = 0;
    for (size_t cpu = 0; cpu < CPU_SETSIZE && k < s->nworkers; cpu++)
        if (CPU_ISSET(cpu, &set))
            s->cpus[k++] = (unsigned)cpu;
    return 0;
}

int echod_steer_pin(struct echod_server *s, unsigned worker)
{
    if (!s->cpus)
        return 0;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(s->cpus[worker], &set);
    int err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    if (err)
        fprintf(stderr, "echod: --steer cpu: worker %u: pinning it to CPU %u: %s\n", worker + 1,
                s->cpus[worker], strerror(err));
    return -err;
}

int echod_steer_listener(const struct echod *d, int fd, const char *shown)
{
    const struct echod_server *s = d->server;
    if (!s->cpus || d->worker != s->nworkers - 1)
        return 0;
    /* ld cpu; then for each worker: if cpu == its CPU, return its index; else hash. */
    struct sock_filter code[2 + 2 * ECHOD_MAX_WORKERS];
    unsigned len = 0;
    code[len++] =
        (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_AD_OFF + SKF_AD_CPU));
    for (unsigned k = 0; k < s->nworkers; k++) {
        code[len++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, s->cpus[k], 0, 1);
        code[len++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, k);
    }
    code[len++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, STEER_BY_HASH);
    struct sock_fprog prog = {.len = (unsigned short)len, .filter = code};
    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)) == 0)
        return 0;
    int rc = -errno;
    fprintf(stderr,
            "echod: --steer cpu: listen on %s: the kernel refused the steering program: %s\n",
            shown, strerror(-rc));
    return rc;
}

void echod_steer_say(const struct echod_server *s)
{
    if (!s->cpus || s->opt->quiet)
        return;
    flockfile(stderr); /* one line, however many workers */
    fprintf(stderr, "echod: --steer cpu: each connection goes to the worker on its CPU:");
    for (unsigned k = 0; k < s->nworkers; k++)
        fprintf(stderr, "%s worker %u on CPU %u", k ? "," : "", k + 1, s->cpus[k]);
    fputc('\n', stderr);
    funlockfile(stderr);
}
