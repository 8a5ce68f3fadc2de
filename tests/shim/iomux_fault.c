/* SPDX-License-Identifier: MIT */
/*
 * iomux_fault.c - an LD_PRELOAD shim that injects I/O and allocation faults,
 * for the reliability tests only (it is never installed).
 *
 * On sockets, send/sendto/sendmsg/write/writev and recv/recvfrom/recvmsg/
 * read/readv return short counts, EINTR or EAGAIN at random, and
 * accept/accept4 fail with EINTR, EAGAIN or ECONNABORTED: everything a
 * correct non-blocking program must already survive, made frequent. Pipes,
 * files and terminals are left alone, so a program's stdout, its logs and
 * the loop's signal self-pipe behave normally. malloc/calloc/realloc can
 * fail at one chosen call.
 *
 * Environment (all optional; without any, the shim only counts):
 *   IOMUX_FAULT_SEED=N         seed of the fault decisions (default 1)
 *   IOMUX_FAULT_SHORT=P        percent of socket transfers cut short
 *   IOMUX_FAULT_EINTR=P        percent that fail with EINTR
 *   IOMUX_FAULT_EAGAIN=P       percent that fail with EAGAIN
 *   IOMUX_FAULT_ACCEPT=P       percent of accepts that fail (EINTR, EAGAIN
 *                              or ECONNABORTED in turn)
 *   IOMUX_FAULT_CORRUPT=P      percent of socket sends (send, sendmsg) that
 *                              flip one bit of what they send: not a fault a
 *                              program can survive, but how the tests prove
 *                              that their checkers catch damaged data
 *   IOMUX_FAULT_MALLOC_FAIL=N  the Nth allocation call (malloc, calloc,
 *                              realloc, counted from start-up) returns NULL
 *   IOMUX_FAULT_REPORT=PATH    at exit, write the counters to PATH
 *
 * Reproducibility: decision k is a pure function of the seed and k, so a run
 * makes the same choices for the same sequence of calls. The sequence itself
 * depends on network timing, so two runs of a networked program are alike
 * in kind (rates, allocation failure point), not call for call.
 *
 * The real functions are found with dlsym(RTLD_NEXT); allocation goes to
 * glibc's __libc_malloc and friends directly, because dlsym itself may
 * allocate and must not recurse into us. A process with a sanitizer runtime
 * in the executable intercepts these calls before any preloaded library,
 * so the shim has no effect there: its counters stay at zero, which is how
 * the test driver tells (and skips).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* glibc's own allocator entry points (exported, undocumented but stable). */
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);

/* Most iovecs a short sendmsg/writev keeps; more is never needed to cut a
   transfer short. */
#define SHIM_IOV_MAX 64

static struct {
    int ready;
    uint64_t seed, draws;
    unsigned short_pct, eintr_pct, eagain_pct, accept_pct, corrupt_pct;
    unsigned long malloc_fail; /* 0 = never */
    const char *report;
} cfg;

/* Counters, written to IOMUX_FAULT_REPORT at exit. */
static struct {
    unsigned long io_calls, shorts, eintrs, eagains, accept_calls, accept_faults, corrupted;
    unsigned long mallocs, malloc_failed;
} cnt;

static ssize_t (*real_send)(int, const void *, size_t, int);
static ssize_t (*real_sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
static ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_recv)(int, void *, size_t, int);
static ssize_t (*real_recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
static ssize_t (*real_recvmsg)(int, struct msghdr *, int);
static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_readv)(int, const struct iovec *, int);
static int (*real_accept)(int, struct sockaddr *, socklen_t *);
static int (*real_accept4)(int, struct sockaddr *, socklen_t *, int);

static unsigned env_pct(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return 0;
    unsigned long p = strtoul(v, NULL, 10);
    return p > 100 ? 100u : (unsigned)p;
}

/* POSIX says the result of dlsym is a void * that may be converted to a
   function pointer; the memcpy keeps -Wpedantic quiet about it. */
static void resolve(void *slot, const char *name)
{
    void *sym = dlsym(RTLD_NEXT, name);
    memcpy(slot, &sym, sizeof(sym));
}

static void init(void)
{
    if (cfg.ready)
        return;
    resolve(&real_send, "send");
    resolve(&real_sendto, "sendto");
    resolve(&real_sendmsg, "sendmsg");
    resolve(&real_write, "write");
    resolve(&real_writev, "writev");
    resolve(&real_recv, "recv");
    resolve(&real_recvfrom, "recvfrom");
    resolve(&real_recvmsg, "recvmsg");
    resolve(&real_read, "read");
    resolve(&real_readv, "readv");
    resolve(&real_accept, "accept");
    resolve(&real_accept4, "accept4");
    const char *seed = getenv("IOMUX_FAULT_SEED");
    cfg.seed = seed ? strtoull(seed, NULL, 10) : 1;
    cfg.short_pct = env_pct("IOMUX_FAULT_SHORT");
    cfg.eintr_pct = env_pct("IOMUX_FAULT_EINTR");
    cfg.eagain_pct = env_pct("IOMUX_FAULT_EAGAIN");
    cfg.accept_pct = env_pct("IOMUX_FAULT_ACCEPT");
    cfg.corrupt_pct = env_pct("IOMUX_FAULT_CORRUPT");
    const char *mf = getenv("IOMUX_FAULT_MALLOC_FAIL");
    cfg.malloc_fail = mf ? strtoul(mf, NULL, 10) : 0;
    cfg.report = getenv("IOMUX_FAULT_REPORT");
    cfg.ready = 1;
}

__attribute__((constructor)) static void shim_start(void)
{
    init();
}

__attribute__((destructor)) static void shim_report(void)
{
    if (!cfg.report)
        return;
    /* fopen/fprintf may allocate: the failure point is long past. */
    FILE *f = fopen(cfg.report, "w");
    if (!f)
        return;
    fprintf(f,
            "io_calls=%lu shorts=%lu eintrs=%lu eagains=%lu accept_calls=%lu "
            "accept_faults=%lu corrupted=%lu mallocs=%lu malloc_failed=%lu\n",
            cnt.io_calls, cnt.shorts, cnt.eintrs, cnt.eagains, cnt.accept_calls, cnt.accept_faults,
            cnt.corrupted, cnt.mallocs, cnt.malloc_failed);
    fclose(f);
}

/* splitmix64 of (seed, k): decision k depends on nothing else. */
static uint64_t draw(void)
{
    uint64_t z = cfg.seed * 0x9e3779b97f4a7c15u + ++cfg.draws * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static int is_socket(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

enum fault { NONE, SHORT, FAIL_EINTR, FAIL_EAGAIN };

/* Picks the fate of one transfer of `len` bytes on `fd`. */
static enum fault pick(int fd, size_t len)
{
    init();
    if (!(cfg.short_pct | cfg.eintr_pct | cfg.eagain_pct) || !is_socket(fd))
        return NONE;
    cnt.io_calls++;
    unsigned r = (unsigned)(draw() % 100);
    if (r < cfg.eintr_pct) {
        cnt.eintrs++;
        return FAIL_EINTR;
    }
    if (r < cfg.eintr_pct + cfg.eagain_pct) {
        cnt.eagains++;
        return FAIL_EAGAIN;
    }
    if (r < cfg.eintr_pct + cfg.eagain_pct + cfg.short_pct && len > 1) {
        cnt.shorts++;
        return SHORT;
    }
    return NONE;
}

/* A shorter length, 1 .. len - 1, biased towards very short ones so that
   one-byte transfers happen often. */
static size_t shorter(size_t len)
{
    uint64_t r = draw();
    size_t cap = (r & 1) ? 16 : len - 1;
    if (cap > len - 1)
        cap = len - 1;
    return 1 + (size_t)((r >> 1) % cap);
}

static ssize_t fail(enum fault f)
{
    errno = f == FAIL_EINTR ? EINTR : EAGAIN;
    return -1;
}

static size_t iov_total(const struct iovec *iov, size_t n)
{
    size_t t = 0;
    for (size_t i = 0; i < n; i++)
        t += iov[i].iov_len;
    return t;
}

/* Copies `iov` into `out`, keeping only the first `keep` bytes; returns the
   number of entries used. */
static size_t iov_cut(const struct iovec *iov, size_t n, size_t keep, struct iovec *out)
{
    size_t used = 0;
    for (size_t i = 0; i < n && keep > 0 && used < SHIM_IOV_MAX; i++) {
        out[used] = iov[i];
        if (out[used].iov_len > keep)
            out[used].iov_len = keep;
        keep -= out[used].iov_len;
        used++;
    }
    return used;
}

/* With IOMUX_FAULT_CORRUPT, returns a damaged copy of the first `*len`
   bytes (at most sizeof(spoiled); *len is cut to that), else NULL. */
static unsigned char spoiled[65536];

static const void *corrupt(int fd, const void *buf, size_t *len)
{
    if (!cfg.corrupt_pct || *len == 0 || !is_socket(fd) || draw() % 100 >= cfg.corrupt_pct)
        return NULL;
    if (*len > sizeof(spoiled))
        *len = sizeof(spoiled);
    memcpy(spoiled, buf, *len);
    uint64_t r = draw();
    spoiled[(r >> 3) % *len] ^= (unsigned char)(1u << (r & 7));
    cnt.corrupted++;
    return spoiled;
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
    enum fault f = pick(fd, len);
    if (f == FAIL_EINTR || f == FAIL_EAGAIN)
        return fail(f);
    if (f == SHORT)
        len = shorter(len);
    const void *bad = corrupt(fd, buf, &len);
    return real_send(fd, bad ? bad : buf, len, flags);
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to,
               socklen_t tolen)
{
    /* Datagrams cannot be cut: only connected streams get short counts. */
    enum fault f = to ? NONE : pick(fd, len);
    if (f == FAIL_EINTR || f == FAIL_EAGAIN)
        return fail(f);
    return real_sendto(fd, buf, f == SHORT ? shorter(len) : len, flags, to, tolen);
}

ssize_t write(int fd, const void *buf, size_t len)
{
    enum fault f = pick(fd, len);
    if (f == FAIL_EINTR || f == FAIL_EAGAIN)
        return fail(f);
    return real_write(fd, buf, f == SHORT ? shorter(len) : len);
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    enum fault f = pick(fd, len);
    if (f == FAIL_EINTR || f == FAIL_EAGAIN)
        return fail(f);
    return real_recv(fd, buf, f == SHORT ? shorter(len) : len, flags);
}

ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from,
                 socklen_t *fromlen)
{
    enum fault f = from ? NONE : pick(fd, len);
    if (f == FAIL_EINTR || f == FAIL_EAGAIN)
        return fail(f);
    return real_recvfrom(fd, buf, f == SHORT ? shorter(len) : len, flags, from, fromlen);
}

ssize_t read(int fd, void *buf, size_t len)
{
    enum fault f = pick(fd, len);
    if (f == FAIL_EINTR || f == FAIL_EAGAIN)
        return fail(f);
    return real_read(fd, buf, f == SHORT ? shorter(len) : len);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    size_t total = iov_total(msg->msg_iov, msg->msg_iovlen);
    enum fault f = msg->msg_name ? NONE : pick(fd, total);
    if (f == FAIL_EINTR || f == FAIL_EAGAIN)
        return fail(f);
    struct iovec cut[SHIM_IOV_MAX];
    struct msghdr m = *msg;
    m.msg_iovlen = iov_cut(msg->msg_iov, msg->msg_iovlen, f == SHORT ? shorter(total) : total, cut);
    m.msg_iov = cut;
    if (m.msg_iovlen > 0) {
        /* Only the first piece is damaged and sent: a short count. */
        size_t len = cut[0].iov_len;
        const void *bad = corrupt(fd, cut[0].iov_base, &len);
        if (bad) {
            cut[0].iov_base = (void *)(uintptr_t)bad;
            cut[0].iov_len = len;
            m.msg_iovlen = 1;
        }
    }
    return real_sendmsg(fd, &m, flags);
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    size_t total = iov_total(msg->msg_iov, msg->msg_iovlen);
    enum fault f = msg->msg_name ? NONE : pick(fd, total);
    if (f == FAIL_EINTR || f == FAIL_EAGAIN)
        return fail(f);
    if (f != SHORT)
        return real_recvmsg(fd, msg, flags);
    /* The caller's msghdr gets the flags and control data back. */
    struct iovec *orig = msg->msg_iov;
    size_t orig_len = msg->msg_iovlen;
    struct iovec cut[SHIM_IOV_MAX];
    msg->msg_iovlen = iov_cut(orig, orig_len, shorter(total), cut);
    msg->msg_iov = cut;
    ssize_t n = real_recvmsg(fd, msg, flags);
    msg->msg_iov = orig;
    msg->msg_iovlen = orig_len;
    return n;
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
    size_t total = n > 0 ? iov_total(iov, (size_t)n) : 0;
    enum fault f = pick(fd, total);
    if (f == FAIL_EINTR || f == FAIL_EAGAIN)
        return fail(f);
    if (f != SHORT)
        return real_writev(fd, iov, n);
    struct iovec cut[SHIM_IOV_MAX];
    size_t used = iov_cut(iov, (size_t)n, shorter(total), cut);
    return real_writev(fd, cut, (int)used);
}

ssize_t readv(int fd, const struct iovec *iov, int n)
{
    size_t total = n > 0 ? iov_total(iov, (size_t)n) : 0;
    enum fault f = pick(fd, total);
    if (f == FAIL_EINTR || f == FAIL_EAGAIN)
        return fail(f);
    if (f != SHORT)
        return real_readv(fd, iov, n);
    struct iovec cut[SHIM_IOV_MAX];
    size_t used = iov_cut(iov, (size_t)n, shorter(total), cut);
    return real_readv(fd, cut, (int)used);
}

/* Returns the errno an accept should fail with, or 0. */
static int accept_fault(void)
{
    init();
    if (!cfg.accept_pct)
        return 0;
    cnt.accept_calls++;
    uint64_t r = draw();
    if (r % 100 >= cfg.accept_pct)
        return 0;
    cnt.accept_faults++;
    static const int errs[] = {EINTR, EAGAIN, ECONNABORTED};
    return errs[(r >> 8) % 3];
}

int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    int e = accept_fault();
    if (e) {
        errno = e;
        return -1;
    }
    return real_accept(fd, addr, len);
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    int e = accept_fault();
    if (e) {
        errno = e;
        return -1;
    }
    return real_accept4(fd, addr, len, flags);
}

/* True when this allocation is the one that must fail. */
static int malloc_fails(void)
{
    cnt.mallocs++;
    if (cfg.malloc_fail && cnt.mallocs == cfg.malloc_fail) {
        cnt.malloc_failed = cnt.mallocs;
        return 1;
    }
    return 0;
}

/* The allocation wrappers read cfg without init(): the constructor runs
   before main, and allocations made earlier (by other libraries' start-up)
   are counted but never failed. */
void *malloc(size_t size)
{
    if (malloc_fails()) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size)
{
    if (malloc_fails()) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_calloc(count, size);
}

void *realloc(void *ptr, size_t size)
{
    if (malloc_fails()) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_realloc(ptr, size);
}
