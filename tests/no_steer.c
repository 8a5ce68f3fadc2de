/* SPDX-License-Identifier: MIT */
/*
 * no_steer - runs a program as a system that refuses what echod --steer cpu needs: a seccomp
 * filter makes sched_setaffinity() fail with EPERM ("affinity": pinning a thread, as a
 * cpuset that forbids it would), or setsockopt(SO_ATTACH_REUSEPORT_CBPF) fail with EPERM
 * ("cbpf": a kernel or policy that refuses the steering program), then execs the program.
 * For the tests of echod's start-up failures, with the real kernel interfaces otherwise.
 *
 *   no_steer affinity|cbpf PROGRAM [ARG...]
 *
 * Exits 77 (skip) if the filter cannot be installed here, 2 on usage errors.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The low 32 bits of a system call's argument (the option names are small). */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ARG_LOW(i) (offsetof(struct seccomp_data, args) + (i) * sizeof(__u64))
#else
#define ARG_LOW(i) (offsetof(struct seccomp_data, args) + (i) * sizeof(__u64) + 4)
#endif

#define REFUSE BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA))
#define ALLOW  BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[1], "affinity") != 0 && strcmp(argv[1], "cbpf") != 0)) {
        fprintf(stderr, "usage: no_steer affinity|cbpf PROGRAM [ARG...]\n");
        return 2;
    }
#if defined(__NR_sched_setaffinity) && defined(__NR_setsockopt) && defined(SO_ATTACH_REUSEPORT_CBPF)
    struct sock_filter affinity[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_sched_setaffinity, 0, 1),
        REFUSE,
        ALLOW,
    };
    struct sock_filter cbpf[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_setsockopt, 0, 5),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LOW(1)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SOL_SOCKET, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LOW(2)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SO_ATTACH_REUSEPORT_CBPF, 0, 1),
        REFUSE,
        ALLOW,
    };
    bool pin = strcmp(argv[1], "affinity") == 0;
    struct sock_fprog prog = {
        .len = pin ? sizeof affinity / sizeof affinity[0] : sizeof cbpf / sizeof cbpf[0],
        .filter = pin ? affinity : cbpf,
    };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
        fprintf(stderr, "no_steer: seccomp: %s\n", strerror(errno));
        return 77;
    }
    execvp(argv[2], argv + 2);
    fprintf(stderr, "no_steer: %s: %s\n", argv[2], strerror(errno));
    return 127;
#else
    fprintf(stderr, "no_steer: no sched_setaffinity() or setsockopt() system call here\n");
    return 77;
#endif
}
