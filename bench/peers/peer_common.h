/* SPDX-License-Identifier: MIT */
/*
 * peer_common.h - the one thing every benchmark peer does alike: listen on
 * 127.0.0.1:PORT (0 = any free port), non-blocking, and say on stdout which
 * port it got, as echod does, so the driver never guesses or sleeps.
 * Header-only so that each peer stays one self-contained program.
 */
#ifndef PEER_COMMON_H
#define PEER_COMMON_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* Returns the listening socket, or -1 after printing why. */
static inline int peer_listen(const char *port_text)
{
    char *end;
    long port = strtol(port_text, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535) {
        fprintf(stderr, "usage: PEER [PORT]\n");
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 4096) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        perror("peer: listen");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    printf("127.0.0.1:%u\n", (unsigned)ntohs(a.sin_port));
    fflush(stdout);
    return fd;
}

#endif /* PEER_COMMON_H */
