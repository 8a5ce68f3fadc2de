/* SPDX-License-Identifier: MIT */
/*
 * no_uring - runs a program as a system that refuses io_uring does: a
 * seccomp filter makes io_uring_setup() fail with the errno given (ENOSYS
 * as on a kernel without it, EPERM as under a container's policy or the
 * io_uring_disabled sysctl), then execs the program. For the tests of
 * echod --engine auto's fall-back, with the real kernel interface.
 *
 *   no_uring ENOSYS|EPERM PROGRAM [ARG...]
 *
 * Exits 77 (skip) if the filter cannot be installed, 2 on usage errors.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[1], "ENOSYS") != 0 && strcmp(argv[1], "EPERM") != 0)) {
        fprintf(stderr, "usage: no_uring ENOSYS|EPERM PROGRAM [ARG...]\n");
        return 2;
    }
#ifdef __NR_io_uring_setup
    unsigned err = strcmp(argv[1], "ENOSYS") == 0 ? ENOSYS : EPERM;
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (err & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof filter / sizeof filter[0], .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
        fprintf(stderr, "no_uring: seccomp: %s\n", strerror(errno));
        return 77;
    }
    execvp(argv[2], argv + 2);
    fprintf(stderr, "no_uring: %s: %s\n", argv[2], strerror(errno));
    return 127;
#else
    fprintf(stderr, "no_uring: no io_uring_setup() on this system\n");
    return 77;
#endif
}
