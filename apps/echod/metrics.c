/* SPDX-License-Identifier: MIT */
/*
 * metrics.c - the Prometheus exporter of --metrics (metrics.h).
 *
 * The answer to a request head (http_head.c): 200 with the exposition for
 * GET or HEAD /metrics, 404 for any other path, 405 for another method on
 * /metrics, 400 for what is not HTTP/1.x, 431 for a head larger than
 * METRICS_HEAD_MAX, 505 for another HTTP version. Every answer says
 * Connection: close and has a Content-Length.
 *
 * The exposition: the plain counters of struct echod are one table
 * (families[]) of names, types, help and field offsets, so a counter is
 * one line here; what is computed (info, times, agent state, buffers, side
 * ports) follows it. Every sample goes through prom_sample(), which puts
 * `common` labels first: once there are workers, each worker's samples
 * get worker="N" there, and nothing else changes.
 */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "budget.h"
#include "echod_internal.h"
#include "http_head.h"
#include "sideport.h"
#include "splice_pool.h"
#include "strbuf.h"

/* Prometheus sends a head of a few hundred bytes. */
#define METRICS_HEAD_MAX 4096
/* Room for the status line and headers in front of the body. */
#define METRICS_HTTP_MAX 512
/* The exposition is a few kilobytes; a body that would not fit is a 500
   (and a bug: the test suite scrapes every metric). */
#define METRICS_BODY_MAX (16 * 1024)
/* Scrapers are few: a Prometheus server or two, a person with curl. */
#define METRICS_MAX_CONNS   64
#define METRICS_DEADLINE_MS 3000

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct echod_metrics {
    struct echod *d;
    double start_wall; /* seconds since the epoch */
    uint64_t start_ms; /* loop time */
    char body[METRICS_BODY_MAX];
};

/* ---- the text format ---------------------------------------------------- */

struct prom {
    struct strbuf out;  /* out.truncated: something did not fit */
    const char *common; /* labels of every sample ("" for none) */
};

static void prom_family(struct prom *p, const char *name, const char *type, const char *help)
{
    strbuf_appendf(&p->out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample: `name{common,labels} value`, braces only if labelled. */
static void prom_sample(struct prom *p, const char *name, const char *labels, const char *value)
{
    bool c = p->common[0], l = labels[0];
    strbuf_appendf(&p->out, "%s%s%s%s%s%s %s\n", name, c || l ? "{" : "", p->common,
                   c && l ? "," : "", labels, c || l ? "}" : "", value);
}

static void prom_u64(struct prom *p, const char *name, const char *labels, uint64_t v)
{
    char text[24];
    snprintf(text, sizeof(text), "%" PRIu64, v);
    prom_sample(p, name, labels, text);
}

static void prom_seconds(struct prom *p, const char *name, double v)
{
    char text[32];
    snprintf(text, sizeof(text), "%.3f", v);
    prom_sample(p, name, "", text);
}

/* ---- what is exported ----------------------------------------------------- */

/* A sample of a family: its labels and the struct echod field it reads. */
struct sample_row {
    const char *labels;
    size_t field; /* offset of a uint64_t in struct echod */
};

struct family_row {
    const char *name, *type, *help;
    const struct sample_row *samples;
    size_t nsamples;
};

#define FIELD(f) offsetof(struct echod, f)
#define ROWS(a)  a, sizeof(a) / sizeof(a[0])

static const struct sample_row open_rows[] = {{"", FIELD(open)}};
static const struct sample_row total_rows[] = {{"", FIELD(total)}};
static const struct sample_row in_rows[] = {{"", FIELD(bytes_in)}};
static const struct sample_row out_rows[] = {{"", FIELD(bytes_out)}};
static const struct sample_row resets_rows[] = {{"", FIELD(resets)}};
static const struct sample_row errors_rows[] = {{"", FIELD(errors)}};
static const struct sample_row idle_rows[] = {{"", FIELD(idle_closed)}};
static const struct sample_row refused_rows[] = {
    {"reason=\"max_conns\"", FIELD(refused_max)},
    {"reason=\"per_ip\"", FIELD(refused_perip)},
    {"reason=\"fds\"", FIELD(refused_fds)},
    {"reason=\"watch\"", FIELD(refused_watch)},
};
/* PROXY protocol headers (struct echod_proxy_stats, proxy_accept.c). */
static const struct sample_row proxy_ok_rows[] = {
    {"command=\"proxy\"", FIELD(proxy.accepted)},
    {"command=\"local\"", FIELD(proxy.local)},
};
static const struct sample_row proxy_bad_rows[] = {
    {"reason=\"invalid\"", FIELD(proxy.rejected_invalid)},
    {"reason=\"timeout\"", FIELD(proxy.rejected_timeout)},
    {"reason=\"source\"", FIELD(proxy.rejected_source)},
    {"reason=\"closed\"", FIELD(proxy.rejected_closed)},
};
/* TLS listeners (struct echod_tls_stats, tls_accept.c). */
static const struct sample_row tls_hs_rows[] = {
    {"result=\"ok\"", FIELD(tls.ok)},
    {"result=\"failed\"", FIELD(tls.failed)},
    {"result=\"timeout\"", FIELD(tls.timed_out)},
};
static const struct sample_row tls_end_rows[] = {
    {"reason=\"truncated\"", FIELD(tls.truncated)},
    {"reason=\"record_error\"", FIELD(tls.record_errors)},
};

static const struct family_row families[] = {
    {"echod_connections_open", "gauge", "Echo connections open now.", ROWS(open_rows)},
    {"echod_connections_total", "counter", "Echo connections served since the start.",
     ROWS(total_rows)},
    {"echod_received_bytes_total", "counter", "Bytes received from echo clients.", ROWS(in_rows)},
    {"echod_sent_bytes_total", "counter", "Bytes echoed back (queued or sent).", ROWS(out_rows)},
    {"echod_connections_refused_total", "counter",
     "Connections closed at once, by reason: --max-conns, --max-conns-per-ip, out of "
     "descriptors, a descriptor the backend cannot watch.",
     ROWS(refused_rows)},
    {"echod_connection_resets_total", "counter",
     "Connections the client reset (ECONNRESET, EPIPE).", ROWS(resets_rows)},
    {"echod_connection_errors_total", "counter",
     "Connections ended by another error (out of memory, keepalive timeout, ...).",
     ROWS(errors_rows)},
    {"echod_idle_closed_total", "counter", "Connections closed by --idle-timeout.",
     ROWS(idle_rows)},
    {"echod_proxy_headers_accepted_total", "counter",
     "PROXY protocol headers accepted, by command (proxy, or local: the balancer's own check).",
     ROWS(proxy_ok_rows)},
    {"echod_proxy_headers_rejected_total", "counter",
     "Connections closed for their PROXY protocol header, by reason.", ROWS(proxy_bad_rows)},
    {"echod_tls_handshakes_total", "counter",
     "TLS handshakes on tls-cert= listeners, by result (ok, failed, timeout: --tls-timeout).",
     ROWS(tls_hs_rows)},
    {"echod_tls_connections_failed_total", "counter",
     "TLS connections ended after their handshake without a clean end, by reason (truncated: "
     "closed without close_notify; record_error: a record or message refused).",
     ROWS(tls_end_rows)},
};

static void render_table(struct prom *p, const struct echod *d)
{
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        const struct family_row *f = &families[i];
        prom_family(p, f->name, f->type, f->help);
        for (size_t j = 0; j < f->nsamples; j++) {
            uint64_t v;
            memcpy(&v, (const char *)d + f->samples[j].field, sizeof(v));
            prom_u64(p, f->name, f->samples[j].labels, v);
        }
    }
}

static void render_info(struct prom *p, const struct echod_metrics *m)
{
    const struct echod *d = m->d;
    char labels[160];
    snprintf(labels, sizeof(labels), "version=\"%s\",engine=\"%s\",backend=\"%s\"", iomux_version(),
             d->engine_ops->name, iomux_loop_backend(d->loop));
    prom_family(p, "echod_info", "gauge",
                "What serves: echod's version, its --engine and the loop's backend.");
    prom_sample(p, "echod_info", labels, "1");
    prom_family(p, "echod_start_time_seconds", "gauge",
                "When echod started, in seconds since the Unix epoch.");
    prom_seconds(p, "echod_start_time_seconds", m->start_wall);
    prom_family(p, "echod_uptime_seconds", "gauge", "Seconds since echod started.");
    prom_seconds(p, "echod_uptime_seconds",
                 (double)(iomux_loop_now(d->loop) - m->start_ms) / 1000.0);
    prom_family(p, "echod_max_connections", "gauge", "--max-conns (0: no limit).");
    prom_u64(p, "echod_max_connections", "", d->opt->max_conns);
}

static void render_state(struct prom *p, const struct echod *d)
{
    enum agent_state now = echod_agent_state(d);
    prom_family(p, "echod_agent_state", "gauge",
                "What --agent says: 1 for the state echod is in (up, drain, maint).");
    for (int s = 0; s < AGENT_STATES; s++) {
        char labels[32];
        snprintf(labels, sizeof(labels), "state=\"%s\"", agent_state_name((enum agent_state)s));
        prom_u64(p, "echod_agent_state", labels, s == (int)now);
    }
    struct iomux_buf_pool_stats ps;
    iomux_buf_pool_stats(d->pool, &ps);
    prom_family(p, "echod_buffer_chunks", "gauge",
                "Buffer chunks holding queued bytes (in_use) and kept for reuse (cached).");
    prom_u64(p, "echod_buffer_chunks", "state=\"in_use\"", ps.chunks_in_use);
    prom_u64(p, "echod_buffer_chunks", "state=\"cached\"", ps.chunks_cached);
}

/* The side ports' own connections, never counted as echo connections. */
static void render_side(struct prom *p, const struct echod *d)
{
    static const char *const names[] = {"agent", "metrics"};
    const struct sideport *ports[] = {d->agent, d->metrics};
    prom_family(p, "echod_side_connections_total", "counter",
                "Connections to --agent and --metrics, by outcome: answered, closed at once "
                "over the limit of connections (overflow), closed by the deadline (timed_out).");
    for (size_t i = 0; i < 2; i++) {
        struct sideport_stats st;
        char labels[64];
        if (!ports[i])
            continue;
        sideport_stats(ports[i], &st);
        const struct {
            const char *outcome;
            uint64_t value;
        } rows[] = {
            {"answered", st.answered}, {"overflow", st.overflow}, {"timed_out", st.timed_out}};
        for (size_t j = 0; j < 3; j++) {
            snprintf(labels, sizeof(labels), "port=\"%s\",outcome=\"%s\"", names[i],
                     rows[j].outcome);
            prom_u64(p, "echod_side_connections_total", labels, rows[j].value);
        }
    }
}

/* --splice (splice_pool.h): bytes echoed through pipes, and the pipes (of every worker). */
static void render_splice(struct prom *p, const struct echod_counters *totals)
{
    struct splice_stats st;
    echod_counters_splice(totals, &st);
    prom_family(p, "echod_spliced_bytes_total", "counter",
                "Bytes echoed through pipes with splice(), never copied into echod (--splice); "
                "part of echod_sent_bytes_total.");
    prom_u64(p, "echod_spliced_bytes_total", "", st.spliced);
    prom_family(p, "echod_splice_pipes", "gauge",
                "Pipes of --splice: lent to connections now, open (lent or free), the bound.");
    prom_u64(p, "echod_splice_pipes", "state=\"lent\"", st.lent);
    prom_u64(p, "echod_splice_pipes", "state=\"open\"", st.pipes);
    prom_u64(p, "echod_splice_pipes", "state=\"max\"", st.max);
    prom_family(p, "echod_splice_no_pipe_total", "counter",
                "Reads a spliced connection copied instead: no pipe free, or pipe() failed.");
    prom_u64(p, "echod_splice_no_pipe_total", "", st.no_pipe);
}

/* The memory budget (budget.h): what is held against --max-buffered. */
static void render_budget(struct prom *p, struct echod *d, const struct echod *totals)
{
    prom_family(p, "echod_buffered_bytes", "gauge",
                "Bytes held in user space for all connections (queues, receive buffers).");
    prom_u64(p, "echod_buffered_bytes", "",
             d->server ? totals->buffered_bytes : echod_budget_buffered(d));
    prom_family(p, "echod_max_buffered_bytes", "gauge", "--max-buffered (0: no budget).");
    prom_u64(p, "echod_max_buffered_bytes", "", totals->max_buffered);
    prom_family(p, "echod_shed_memory_total", "counter",
                "Connections closed because the memory budget stayed full (--shed-after).");
    prom_u64(p, "echod_shed_memory_total", "", totals->shed_memory);
}

/* Fault modes (faults.h), when some listener has them (fired by every worker). */
static void render_faults(struct prom *p, const struct echod *d,
                          const struct echod_counters *totals)
{
    if (!d->fault_listeners)
        return;
    prom_family(p, "echod_faults_total", "counter",
                "Faults fired on purpose (fault modes of --listen, --udp-drop), by kind.");
    for (int k = 0; k < FAULT_KINDS; k++) {
        char labels[48];
        snprintf(labels, sizeof(labels), "kind=\"%s\"", fault_names[k]);
        prom_u64(p, "echod_faults_total", labels, totals->faults[k]);
    }
}

/* The exposition in m->body; its length, or 0 if it did not fit. */
static size_t render(struct echod_metrics *m)
{
    struct prom p = {.common = ""};
    strbuf_init(&p.out, m->body, sizeof(m->body));
    /* With workers, the whole process's counters (server.h). */
    struct echod_counters totals;
    const struct echod *d = echod_totals_view(m->d, &totals);
    render_info(&p, m);
    render_table(&p, d);
    render_state(&p, d);
    render_side(&p, m->d);
    render_budget(&p, m->d, d);
    render_splice(&p, &totals);
    render_faults(&p, m->d, &totals);
    return p.out.truncated ? 0 : p.out.len;
}

/* ---- HTTP ------------------------------------------------------------------ */

/* The whole answer in `out`: status line, headers, and `body` unless
   head_only (HEAD: the headers GET would get). Its length. */
static size_t http_reply(char *out, size_t size, int status, const char *reason, const char *extra,
                         const char *type, const char *body, size_t len, bool head_only)
{
    int n = snprintf(out, size,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n%s\r\n",
                     status, reason, type, len, extra);
    if (n < 0 || (size_t)n >= size)
        return 0;
    size_t total = (size_t)n;
    if (!head_only && len <= size - total) {
        memcpy(out + total, body, len);
        total += len;
    }
    return total;
}

static size_t http_error(char *out, size_t size, int status, const char *reason, const char *extra)
{
    char body[64];
    int n = snprintf(body, sizeof(body), "%s\n", reason);
    return http_reply(out, size, status, reason, extra, "text/plain; charset=utf-8", body,
                      (size_t)n, false);
}

static bool is(const char *s, size_t n, const char *word)
{
    return n == strlen(word) && memcmp(s, word, n) == 0;
}

static size_t metrics_answer(void *ctx, const char *head, size_t len, bool full, char *out,
                             size_t size)
{
    struct echod_metrics *m = ctx;
    struct http_head h;
    enum http_head_status st = http_head_parse(head, len, &h);
    if (st == HTTP_HEAD_MORE && !full)
        return SIDEPORT_MORE;
    if (st == HTTP_HEAD_MORE)
        return http_error(out, size, 431, "Request Header Fields Too Large", "");
    if (st == HTTP_HEAD_BAD)
        return http_error(out, size, 400, "Bad Request", "");
    if (st == HTTP_HEAD_VERSION)
        return http_error(out, size, 505, "HTTP Version Not Supported", "");
    if (!is(h.path, h.path_len, "/metrics"))
        return http_error(out, size, 404, "Not Found", "");
    bool head_only = is(h.method, h.method_len, "HEAD");
    if (!head_only && !is(h.method, h.method_len, "GET"))
        return http_error(out, size, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n");
    size_t body = render(m);
    if (body == 0)
        return http_error(out, size, 500, "Internal Server Error", "");
    return http_reply(out, size, 200, "OK", "", METRICS_CONTENT_TYPE, m->body, body, head_only);
}

int echod_metrics_start(struct echod *d, int fd)
{
    struct echod_metrics *m = malloc(sizeof(*m));
    if (!m) {
        close(fd);
        return -ENOMEM;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    m->d = d;
    m->start_wall = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
    m->start_ms = iomux_loop_now(d->loop);
    const struct sideport_config cfg = {
        .head_max = METRICS_HEAD_MAX,
        .answer_max = METRICS_HTTP_MAX + METRICS_BODY_MAX,
        .max_conns = METRICS_MAX_CONNS,
        .deadline_ms = METRICS_DEADLINE_MS,
        .answer = metrics_answer,
        .ctx = m,
        .ctx_free = free,
    };
    return sideport_new(d->loop, fd, &cfg, &d->metrics);
}
