/* SPDX-License-Identifier: MIT */
/*
 * daemon.c - echod under a service manager: systemd socket activation
 * (the small LISTEN_FDS protocol, implemented here so that echod needs no
 * libsystemd), inetd mode, dropping root after binding, Unix-domain socket
 * files, and the per-address connection counts of --max-conns-per-ip.
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "options.h"

/* ------------------------------------------------------------------------
 * Socket activation.
 */

/* A decimal number and nothing else, as sd_listen_fds() requires. */
static int parse_env_number(const char *text, unsigned long *out)
{
    if (!text || !*text)
        return -1;
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno || *end || text[0] == '-' || text[0] == '+' || text[0] == ' ')
        return -1;
    *out = v;
    return 0;
}

static void unset_activation_env(void)
{
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
}

/* A passed descriptor: a listening stream or a datagram socket of a
   family we serve, made non-blocking and close-on-exec. 0 or -errno,
   said. */
static int check_passed(struct echod_passed *p)
{
    struct stat st;
    int type = 0, listening = 0;
    socklen_t len = sizeof(type);
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    if (fstat(p->fd, &st) < 0 || !S_ISSOCK(st.st_mode) ||
        getsockopt(p->fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
        getsockname(p->fd, (struct sockaddr *)&ss, &sslen) < 0) {
        fprintf(stderr, "echod: socket activation: fd %d is not a socket\n", p->fd);
        return -ENOTSOCK;
    }
    p->type = type;
    p->family = ss.ss_family;
    if (type != SOCK_STREAM && type != SOCK_DGRAM) {
        fprintf(stderr, "echod: socket activation: fd %d: socket type %d is not served\n", p->fd,
                type);
        return -ESOCKTNOSUPPORT;
    }
    len = sizeof(listening);
    if (type == SOCK_STREAM &&
        (getsockopt(p->fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 || !listening)) {
        /* Accept=yes passes one connection per instance: that is what
           --inetd serves, on stdin. */
        fprintf(stderr,
                "echod: socket activation: fd %d is a stream socket that is not listening "
                "(use Accept=no, or --inetd with StandardInput=socket)\n",
                p->fd);
        return -ENOTCONN;
    }
    if (p->family != AF_INET && p->family != AF_INET6 && p->family != AF_UNIX) {
        fprintf(stderr, "echod: socket activation: fd %d: address family %d is not served\n", p->fd,
                p->family);
        return -EAFNOSUPPORT;
    }
    int flags = fcntl(p->fd, F_GETFL);
    if (flags < 0 || fcntl(p->fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
        fcntl(p->fd, F_SETFD, FD_CLOEXEC) < 0) {
        int err = errno;
        fprintf(stderr, "echod: socket activation: fd %d: %s\n", p->fd, strerror(err));
        return -err;
    }
    return 0;
}

int echod_activation(struct echod_passed *out, size_t *n)
{
    *n = 0;
    unsigned long pid, count;
    const char *pid_text = getenv("LISTEN_PID");
    /* Variables meant for another process (our parent, say) are not ours
       to act on, nor to remove. */
    if (!pid_text || parse_env_number(pid_text, &pid) < 0 || pid != (unsigned long)getpid())
        return 0;
    const char *fds_text = getenv("LISTEN_FDS");
    if (parse_env_number(fds_text, &count) < 0) {
        fprintf(stderr, "echod: socket activation: LISTEN_FDS '%s' is not a number\n",
                fds_text ? fds_text : "");
        return -EBADMSG;
    }
    if (count > ECHOD_MAX_PASSED) {
        fprintf(stderr, "echod: socket activation: %lu sockets passed, at most %d are served\n",
                count, ECHOD_MAX_PASSED);
        return -E2BIG;
    }
    /* LISTEN_FDNAMES: names separated by ':' (FileDescriptorName=). */
    const char *names = getenv("LISTEN_FDNAMES");
    for (unsigned long i = 0; i < count; i++) {
        struct echod_passed *p = &out[i];
        memset(p, 0, sizeof(*p));
        p->fd = ECHOD_LISTEN_FDS_START + (int)i;
        if (names) {
            const char *colon = strchr(names, ':');
            size_t len = colon ? (size_t)(colon - names) : strlen(names);
            if (len >= sizeof(p->name))
                len = sizeof(p->name) - 1;
            memcpy(p->name, names, len);
            p->name[len] = '\0';
            names = colon ? colon + 1 : NULL;
        }
        int rc = check_passed(p);
        if (rc < 0)
            return rc;
    }
    unset_activation_env();
    *n = count;
    return 0;
}

/* ------------------------------------------------------------------------
 * inetd mode.
 */

static int same_file(int a, int b)
{
    struct stat sa, sb;
    return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

static int to_dev_null(int fd)
{
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0)
        return -1;
    int rc = dup2(null, fd);
    close(null);
    return rc < 0 ? -1 : 0;
}

int echod_inetd_setup(int *fd, struct iomux_addr *peer)
{
    struct stat st;
    int type = 0;
    socklen_t len = sizeof(type);
    if (fstat(0, &st) < 0 || !S_ISSOCK(st.st_mode) ||
        getsockopt(0, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM) {
        fprintf(stderr, "echod: --inetd: stdin is not a stream socket\n");
        return -ENOTSOCK;
    }
    memset(peer, 0, sizeof(*peer));
    peer->len = sizeof(peer->ss);
    if (getpeername(0, (struct sockaddr *)&peer->ss, &peer->len) < 0) {
        /* A socket pair's peer has no name; anything else is odd but the
           echo can still be served. */
        memset(peer, 0, sizeof(*peer));
        peer->ss.ss_family = AF_UNIX;
        peer->len = sizeof(sa_family_t);
    }
    /* inetd gives the socket as stdin, stdout and often stderr: a log line
       written there would become part of the echo. */
    if ((same_file(0, 1) && to_dev_null(1) < 0) || (same_file(0, 2) && to_dev_null(2) < 0)) {
        int err = errno;
        fprintf(stderr, "echod: --inetd: /dev/null: %s\n", strerror(err));
        return -err;
    }
    int flags = fcntl(0, F_GETFL);
    if (flags < 0 || fcntl(0, F_SETFL, flags | O_NONBLOCK) < 0) {
        int err = errno;
        fprintf(stderr, "echod: --inetd: stdin: %s\n", strerror(err));
        return -err;
    }
    *fd = 0;
    return 0;
}

/* ------------------------------------------------------------------------
 * Dropping privileges.
 */

int echod_user_lookup(const char *name, struct echod_user *u)
{
    errno = 0;
    struct passwd *pw = getpwnam(name);
    if (!pw) {
        int err = errno ? errno : ENOENT;
        fprintf(stderr, "echod: --user %s: %s\n", name, errno ? strerror(err) : "no such user");
        return -err;
    }
    u->name = name;
    u->uid = pw->pw_uid;
    u->gid = pw->pw_gid;
    return 0;
}

/* Prints why the switch to u failed; returns -err. */
static int switch_failed(const struct echod_user *u, const char *what, unsigned id, int err)
{
    fprintf(stderr, "echod: --user %s: %s(%u): %s\n", u->name, what, id, strerror(err));
    return -err;
}

int echod_user_switch(const struct echod_user *u)
{
    /* Already that user, and only that user: the new echod of an upgrade
       (SIGUSR2), started by one that dropped root. initgroups() would
       need the privilege it no longer has. */
    if (u->uid != 0 && getuid() == u->uid && geteuid() == u->uid && getgid() == u->gid &&
        getegid() == u->gid)
        return 0;
    /* Groups first: after setuid() we would no longer be allowed to. */
    if (initgroups(u->name, u->gid) < 0)
        return switch_failed(u, "initgroups", (unsigned)u->gid, errno);
    if (setgid(u->gid) < 0)
        return switch_failed(u, "setgid", (unsigned)u->gid, errno);
    if (setuid(u->uid) < 0)
        return switch_failed(u, "setuid", (unsigned)u->uid, errno);
    /* Trust but verify: running on as root after being asked not to would
       be worse than not running. */
    if (getuid() != u->uid || geteuid() != u->uid || getgid() != u->gid || getegid() != u->gid ||
        (u->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))) {
        fprintf(stderr, "echod: --user %s: the switch did not hold; refusing to run\n", u->name);
        return -EPERM;
    }
    return 0;
}

const char *echod_bind_hint(int err, unsigned port)
{
    if ((err == EACCES || err == EPERM) && port > 0 && port < 1024)
        return " (ports below 1024 need root or CAP_NET_BIND_SERVICE: start echod as root with "
               "--user NAME, or use socket activation)";
    return "";
}

/* ------------------------------------------------------------------------
 * Unix-domain socket files.
 */

/*
 * A socket file echod made, and how to remove it at exit. The directory is
 * opened (O_PATH) when the socket is bound, while echod may still be root:
 * after --user, unlinkat() on that descriptor needs only write and search
 * permission on the directory itself, not search permission on every
 * directory of the path (a /run/echod/ under a root-only parent, a
 * temporary directory). The name is removed only if it is still the inode
 * bound (fstatat with AT_SYMLINK_NOFOLLOW, in the same directory): a file
 * that replaced ours (a newer echod that took ours for stale) is left alone.
 * The check and the unlink are two steps; what could swap the file in
 * between can write to the directory anyway.
 */
struct unix_file {
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    const char *name; /* in path: after its last '/' */
    int dirfd;
    dev_t dev;
    ino_t ino;
};

/* At most one per --listen and --udp option. Process-wide: the files are
   the process's, whatever server object made them. */
static struct unix_file unix_files[2 * ECHOD_MAX_LISTEN];
static size_t n_unix_files;

int echod_is_unix(const char *text)
{
    return strncmp(text, "unix:", 5) == 0;
}

/* Remembers the socket file at `path` for echod_unix_cleanup(). */
static void unix_remember(const char *path)
{
    if (n_unix_files == sizeof(unix_files) / sizeof(unix_files[0]))
        return;
    struct unix_file *f = &unix_files[n_unix_files];
    snprintf(f->path, sizeof(f->path), "%s", path);
    char *slash = strrchr(f->path, '/');
    f->name = slash ? slash + 1 : f->path;
    if (slash == f->path) {
        f->dirfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    } else if (slash) {
        *slash = '\0';
        f->dirfd = open(f->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        *slash = '/';
    } else {
        f->dirfd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    }
    struct stat st;
    if (f->dirfd < 0)
        return;
    if (fstatat(f->dirfd, f->name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        close(f->dirfd);
        return;
    }
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    n_unix_files++;
}

int echod_unix_bind(const char *opt, const char *text, int type, int *fd)
{
    struct iomux_addr addr;
    int rc = iomux_addr_unix(text, &addr);
    if (rc == -ENAMETOOLONG) {
        echod_usage_error("%s '%s': path too long (at most %zu bytes)", opt, text,
                          sizeof(unix_files[0].path) - 1);
        return -EINVAL;
    }
    if (rc < 0) {
        echod_usage_error("%s '%s': expected unix:PATH", opt, text);
        return -EINVAL;
    }
    rc = iomux_unix_listen(&addr, type, fd);
    if (rc == -EADDRINUSE)
        fprintf(stderr, "echod: %s %s: another process is serving this socket\n", opt, text);
    else if (rc == -EEXIST)
        fprintf(stderr, "echod: %s %s: the path exists and is not a socket (not replaced)\n", opt,
                text);
    else if (rc < 0)
        fprintf(stderr, "echod: %s %s: %s\n", opt, text, strerror(-rc));
    if (rc < 0)
        return rc;
    unix_remember(text + 5);
    return 0;
}

void echod_unix_adopted(const char *path)
{
    unix_remember(path);
}

void echod_unix_forget(void)
{
    for (size_t i = 0; i < n_unix_files; i++)
        close(unix_files[i].dirfd);
    n_unix_files = 0;
}

void echod_unix_cleanup(void)
{
    for (size_t i = 0; i < n_unix_files; i++) {
        struct stat st;
        const struct unix_file *f = &unix_files[i];
        int rc = fstatat(f->dirfd, f->name, &st, AT_SYMLINK_NOFOLLOW);
        bool ours = rc == 0 && st.st_dev == f->dev && st.st_ino == f->ino;
        if (ours)
            rc = unlinkat(f->dirfd, f->name, 0);
        /* After --user: a directory the user may not search or write to.
           The stale file is replaced by the next echod. Gone already, or
           replaced, is not a failure. */
        if (rc < 0 && errno != ENOENT)
            fprintf(stderr, "echod: unix:%s: not removed: %s\n", f->path, strerror(errno));
        close(f->dirfd);
    }
    n_unix_files = 0;
}

/* ------------------------------------------------------------------------
 * Connections per client address: an open-addressing hash table with
 * linear probing, deleting by shifting back (no tombstones, so lookups stay
 * short however many addresses come and go).
 */

struct perip_entry {
    unsigned char key[16]; /* IPv6, or IPv4-mapped */
    uint32_t count;        /* 0: free slot */
};

struct echod_perip {
    uint64_t limit;
    struct perip_entry *slots;
    size_t cap; /* a power of two */
    size_t used;
    uint64_t hash_key;
};

int echod_perip_new(uint64_t limit, struct echod_perip **out)
{
    struct echod_perip *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->limit = limit;
    p->cap = 64;
    p->slots = calloc(p->cap, sizeof(*p->slots));
    if (!p->slots) {
        free(p);
        return -ENOMEM;
    }
    if (getrandom(&p->hash_key, sizeof(p->hash_key), GRND_NONBLOCK) != sizeof(p->hash_key))
        p->hash_key = (uint64_t)getpid() * 0x9e3779b97f4a7c15u;
    *out = p;
    return 0;
}

void echod_perip_free(struct echod_perip *p)
{
    if (!p)
        return;
    free(p->slots);
    free(p);
}

static int perip_key(const struct iomux_addr *peer, unsigned char key[16])
{
    memset(key, 0, 16);
    if (peer->ss.ss_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)&peer->ss)->sin6_addr, 16);
        return 0;
    }
    if (peer->ss.ss_family == AF_INET) {
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *)&peer->ss)->sin_addr, 4);
        return 0;
    }
    return -1;
}

static size_t perip_hash(const struct echod_perip *p, const unsigned char key[16])
{
    uint64_t a, b;
    memcpy(&a, key, 8);
    memcpy(&b, key + 8, 8);
    uint64_t h = (a ^ p->hash_key) * 0x9e3779b97f4a7c15u;
    h ^= h >> 31;
    h = (h ^ b) * 0xbf58476d1ce4e5b9u;
    h ^= h >> 29;
    return (size_t)h & (p->cap - 1);
}

/* The slot holding `key`, or the free slot where it would go. */
static struct perip_entry *perip_find(struct echod_perip *p, const unsigned char key[16])
{
    size_t i = perip_hash(p, key);
    while (p->slots[i].count && memcmp(p->slots[i].key, key, 16) != 0)
        i = (i + 1) & (p->cap - 1);
    return &p->slots[i];
}

static int perip_grow(struct echod_perip *p)
{
    struct perip_entry *old = p->slots;
    size_t old_cap = p->cap;
    struct perip_entry *slots = calloc(old_cap * 2, sizeof(*slots));
    if (!slots)
        return -ENOMEM;
    p->slots = slots;
    p->cap = old_cap * 2;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].count)
            *perip_find(p, old[i].key) = old[i];
    free(old);
    return 0;
}

int echod_perip_acquire(struct echod_perip *p, const struct iomux_addr *peer)
{
    unsigned char key[16];
    if (!p || perip_key(peer, key) < 0)
        return 0;
    struct perip_entry *e = perip_find(p, key);
    if (e->count) {
        if (e->count >= p->limit)
            return -EDQUOT;
        e->count++;
        return 0;
    }
    /* Kept at most half full so that probe sequences stay short. */
    if ((p->used + 1) * 2 > p->cap) {
        if (perip_grow(p) < 0)
            return -ENOMEM;
        e = perip_find(p, key);
    }
    memcpy(e->key, key, 16);
    e->count = 1;
    p->used++;
    return 0;
}

void echod_perip_release(struct echod_perip *p, const struct iomux_addr *peer)
{
    unsigned char key[16];
    if (!p || perip_key(peer, key) < 0)
        return;
    struct perip_entry *e = perip_find(p, key);
    if (!e->count || --e->count)
        return;
    p->used--;
    /* Backward-shift deletion: move later members of the probe run into
       the hole when their home slot is at or before it. */
    size_t hole = (size_t)(e - p->slots);
    size_t i = hole;
    for (;;) {
        i = (i + 1) & (p->cap - 1);
        if (!p->slots[i].count)
            break;
        size_t home = perip_hash(p, p->slots[i].key);
        /* Cyclic "home is not in (hole, i]": the entry may move back. */
        int stays = hole <= i ? (hole < home && home <= i) : (hole < home || home <= i);
        if (!stays) {
            p->slots[hole] = p->slots[i];
            p->slots[i].count = 0;
            hole = i;
        }
    }
    p->slots[hole].count = 0;
}
