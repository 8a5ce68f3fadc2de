/* SPDX-License-Identifier: MIT */
/*
 * test_splice_pool.c - the pipes of echod --splice (apps/echod/
 * splice_pool.c): the bound, lending and giving back, pipes that held
 * bytes never lent again, and pipe() failing with EMFILE (the pool then
 * refuses for a while without trying, and recovers). The end-to-end
 * tests (tests/splice_e2e.py) see the same through echod's statistics.
 */
#include "check.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "splice_pool.h"

static void test_max(void)
{
    CHECK_EQ_U64(splice_pool_max(20000, 0), 256);
    CHECK_EQ_U64(splice_pool_max(64, 0), 8);
    CHECK_EQ_U64(splice_pool_max(20000, 16u << 20), 64); /* a quarter of 16 MiB */
    CHECK_EQ_U64(splice_pool_max(20000, 100u << 10), 0); /* no room for one pipe */
}

static bool is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

static void test_lend_and_give(void)
{
    struct splice_pool *p = splice_pool_new(2);
    CHECK(p != NULL);
    int a[2], b[2], c[2];
    CHECK(splice_pool_take(p, a));
    CHECK(fcntl(a[0], F_GETPIPE_SZ) >= (int)SPLICE_PIPE_SIZE);
    CHECK(fcntl(a[1], F_GETFL) & O_NONBLOCK);
    CHECK(splice_pool_take(p, b));
    CHECK(!splice_pool_take(p, c)); /* the bound */
    struct splice_stats st;
    splice_pool_stats(p, &st);
    CHECK_EQ_U64(st.lent, 2);
    CHECK_EQ_U64(st.no_pipe, 1);
    CHECK_EQ_U64(splice_pool_held(p), 2 * SPLICE_PIPE_SIZE);
    splice_pool_give(p, b, true);
    CHECK(splice_pool_take(p, c)); /* the one given back last */
    CHECK_EQ_INT(c[0], b[0]);
    splice_pool_give(p, a, false); /* held bytes: closed */
    CHECK(!is_open(a[0]) && !is_open(a[1]));
    splice_pool_give(p, c, true);
    splice_pool_count(p, 1000);
    splice_pool_stats(p, &st);
    CHECK_EQ_U64(st.lent, 0);
    CHECK_EQ_U64(st.pipes, 1);
    CHECK_EQ_U64(st.spliced, 1000);
    splice_pool_free(p);
    CHECK(!is_open(c[0]));
}

/* Descriptors run out: refused (no pipe), then refused without trying
   for a while, then lent again once descriptors are free. */
static void test_emfile(void)
{
    struct rlimit old;
    CHECK_OK(getrlimit(RLIMIT_NOFILE, &old));
    int fds[64], n = 0;
    struct rlimit low = {32, old.rlim_max};
    CHECK_OK(setrlimit(RLIMIT_NOFILE, &low));
    while (n < 64 && (fds[n] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
        n++;
    CHECK(n < 64); /* EMFILE came */
    struct splice_pool *p = splice_pool_new(4);
    int a[2];
    CHECK(!splice_pool_take(p, a));
    while (n > 0)
        close(fds[--n]);
    unsigned refused = 1;
    while (!splice_pool_take(p, a) && refused < 1000)
        refused++;
    CHECK_U64(refused, >, 8); /* it waited before trying again */
    CHECK_U64(refused, <, 1000);
    splice_pool_give(p, a, true);
    splice_pool_free(p);
    CHECK_OK(setrlimit(RLIMIT_NOFILE, &old));
}

int main(void)
{
    test_max();
    test_lend_and_give();
    test_emfile();
    return check_exit();
}
