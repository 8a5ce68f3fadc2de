/* SPDX-License-Identifier: MIT */
/* report.c - echo-bench's report; see report.h. */
#include "report.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "interval.h"
#include "udp_worker.h"
#include "worker.h"

/* The share of the CPU time its threads could have had that the load
   generator used: one CPU per thread, up to the CPUs it may run on.
   Rounded to the whole percent every report prints, so that the verdict
   on BUSY_LIMIT agrees with the figure shown (0.9495 printed as 95%
   busy yet "not its own CPU" was a contradiction). */
static double busy_share(const struct totals *t)
{
    unsigned lanes = t->nthreads < t->cpus ? t->nthreads : t->cpus;
    double room = t->window_s * lanes;
    double share = room > 0 ? t->cpu_s / room : 0.0;
    return (double)(long long)(share * 100.0 + 0.5) / 100.0;
}

static double cpu_us_per_msg(const struct totals *t)
{
    return t->messages ? t->cpu_s * 1e6 / (double)t->messages : 0.0;
}

/* Above this, the load generator is the bottleneck, and messages/s says
   more about it than about the server. */
#define BUSY_LIMIT 0.95

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static const char *mode_name(const struct bench_options *o)
{
    if (o->never_read)
        return "never-read";
    if (o->churn)
        return "churn";
    return o->rate ? "open" : "closed";
}

/* Latency for people: microseconds below 10 ms, milliseconds above. */
static void print_latency(const char *label, uint64_t ns)
{
    if (ns < 10000000u)
        printf("  %s %.1f us", label, us(ns));
    else
        printf("  %s %.2f ms", label, (double)ns / 1e6);
}

/* One line: p50, p90, p99, p99.9 and max after the label. */
static void print_percentiles(const char *label, const struct hdr *h)
{
    fputs(label, stdout);
    print_latency("p50", hdr_percentile(h, 50));
    print_latency("p90", hdr_percentile(h, 90));
    print_latency("p99", hdr_percentile(h, 99));
    print_latency("p99.9", hdr_percentile(h, 99.9));
    print_latency("max", h->max);
    printf("\n");
}

/* The open loop fell behind its schedule when the sockets had not taken
   what was due by the end (more than the one message per connection that
   may be half sent at that instant), or when sends left late: median lag
   over BEHIND_LAG_NS. */
#define BEHIND_LAG_NS 1000000u

static int fell_behind(const struct bench_options *o, const struct totals *t)
{
    return o->rate != 0 && (t->unsent > o->conns || hdr_percentile(&t->lag, 50) > BEHIND_LAG_NS);
}

static double achieved_rate(const struct totals *t)
{
    return t->window_s > 0 ? (double)t->messages / t->window_s : 0.0;
}

/* Open loop: the rate asked for and the one achieved, how late the sends
   were against their schedule, and whether echo-bench fell behind. */
static void json_schedule(const struct bench_options *o, const struct totals *t)
{
    printf("\"target_rate\":%llu,\"achieved_rate\":%.1f,\"schedule_lag_us\":{\"p50\":%.1f,"
           "\"max\":%.1f},\"unsent\":%llu,\"behind\":",
           (unsigned long long)o->rate, achieved_rate(t), us(hdr_percentile(&t->lag, 50)),
           us(t->lag.max), (unsigned long long)t->unsent);
    if (fell_behind(o, t))
        printf("{\"unsent_share\":%.6g,\"cpu_limited\":%s},",
               t->scheduled ? (double)t->unsent / (double)t->scheduled : 0.0,
               busy_share(t) >= BUSY_LIMIT ? "true" : "false");
    else
        printf("null,");
}

static void text_schedule(const struct bench_options *o, const struct totals *t)
{
    uint64_t p50 = hdr_percentile(&t->lag, 50);
    printf("rate           target %llu msg/s, achieved %.0f msg/s; sends late by",
           (unsigned long long)o->rate, achieved_rate(t));
    print_latency("p50", p50);
    print_latency("max", t->lag.max);
    printf("\n");
    if (!fell_behind(o, t))
        return;
    printf("warning: echo-bench fell behind its schedule: %llu of %llu due message(s) not sent "
           "by the end (%.0f%%), sends late by %.1f us at the median; ",
           (unsigned long long)t->unsent, (unsigned long long)t->scheduled,
           t->scheduled ? 100.0 * (double)t->unsent / (double)t->scheduled : 0.0, us(p50));
    if (busy_share(t) >= BUSY_LIMIT)
        printf("its own CPU was the limit (%.0f%% busy; more --threads or CPUs would tell)\n",
               busy_share(t) * 100);
    else
        printf("not its own CPU (%.0f%% busy): the sockets took the messages slower than "
               "--rate (the server or the network)\n",
               busy_share(t) * 100);
}

/* --rate A:B and --slo: the ramp and its knee. */
static void json_ramp(const struct bench_options *o)
{
    double rate, t_s;
    printf("\"ramp\":{\"from\":%llu,\"to\":%llu,\"slo_ms\":", (unsigned long long)o->rate,
           (unsigned long long)(o->rate_to ? o->rate_to : o->rate));
    if (o->slo_ms)
        printf("%llu", (unsigned long long)o->slo_ms);
    else
        printf("null");
    if (ival_knee(&rate, &t_s))
        printf(",\"knee_rate\":%.1f,\"knee_t_s\":%.3f},", rate, t_s);
    else
        printf(",\"knee_rate\":null,\"knee_t_s\":null},");
}

static void text_ramp(const struct bench_options *o)
{
    double rate, t_s;
    if (o->rate_to)
        printf("ramp           from %llu to %llu msg/s over the measured time\n",
               (unsigned long long)o->rate, (unsigned long long)o->rate_to);
    if (o->slo_ms == 0)
        return;
    if (ival_knee(&rate, &t_s))
        printf("knee           interval p99 above --slo %llu ms from %.0f msg/s offered on"
               " (the interval ending at %.1f s)\n",
               (unsigned long long)o->slo_ms, rate, t_s);
    else
        printf("knee           none: every interval's p99 within --slo %llu ms\n",
               (unsigned long long)o->slo_ms);
}

static const char *const churn_kind_json[CHURN_KINDS] = {"refused", "reset", "timed_out", "closed",
                                                         "other"};
static const char *const churn_kind_text[CHURN_KINDS] = {"refused", "reset", "timed out",
                                                         "closed early", "other"};

static double connects_per_s(const struct totals *t)
{
    return t->window_s > 0 ? (double)t->connect_hist.total / t->window_s : 0.0;
}

static void json_churn(const struct bench_options *o, const struct totals *t)
{
    const struct hdr *h = &t->connect_hist;
    printf("\"churn\":{\"target_per_s\":%llu,\"per_conn\":%llu,\"connects_per_s\":%.1f,"
           "\"attempts\":%llu,\"connected\":%llu,\"finished\":%llu,",
           (unsigned long long)o->churn, (unsigned long long)o->per_conn, connects_per_s(t),
           (unsigned long long)t->churn_attempts, (unsigned long long)t->churn_connected,
           (unsigned long long)t->churn_finished);
    printf("\"connect_latency_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p99_9\":%.1f,"
           "\"max\":%.1f},\"failures\":{",
           us(hdr_percentile(h, 50)), us(hdr_percentile(h, 90)), us(hdr_percentile(h, 99)),
           us(hdr_percentile(h, 99.9)), us(h->max));
    for (int k = 0; k < CHURN_KINDS; k++)
        printf("%s\"%s\":%llu", k ? "," : "", churn_kind_json[k],
               (unsigned long long)t->churn_failures[k]);
    printf("}},");
}

static void text_churn(const struct bench_options *o, const struct totals *t)
{
    const struct hdr *h = &t->connect_hist;
    printf("churn          target %llu connects/s, achieved %.0f/s; %llu attempted, %llu "
           "connected, %llu closed after %llu message(s)\n",
           (unsigned long long)o->churn, connects_per_s(t), (unsigned long long)t->churn_attempts,
           (unsigned long long)t->churn_connected, (unsigned long long)t->churn_finished,
           (unsigned long long)o->per_conn);
    print_percentiles("connect      ", h);
    printf("failures      ");
    for (int k = 0; k < CHURN_KINDS; k++)
        printf("%s %s %llu", k ? "," : "", churn_kind_text[k],
               (unsigned long long)t->churn_failures[k]);
    printf("\n");
}

void report_json(const struct bench_options *o, const char *backend, unsigned idle,
                 const struct totals *t)
{
    const struct hdr *h = &t->hist;
    printf("{\"connect\":");
    json_string(o->connect);
    printf(",\"backend\":");
    json_string(backend);
    printf(",\"mode\":\"%s\",\"conns\":%u,\"idle\":%u,\"threads\":%u,\"size\":%llu,"
           "\"depth\":%u,\"rate\":%llu,\"duration_s\":%.3f,\"messages\":%llu,"
           "\"messages_per_s\":%.1f,\"bytes\":%llu,\"mb_per_s\":%.3f,",
           mode_name(o), o->conns, idle, o->threads, (unsigned long long)o->size, o->depth,
           (unsigned long long)o->rate, t->window_s, (unsigned long long)t->messages,
           t->window_s > 0 ? (double)t->messages / t->window_s : 0.0, (unsigned long long)t->bytes,
           t->window_s > 0 ? (double)t->bytes / t->window_s / 1e6 : 0.0);
    printf("\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p99_9\":%.1f,\"max\":%.1f,"
           "\"mean\":%.1f},",
           us(hdr_percentile(h, 50)), us(hdr_percentile(h, 90)), us(hdr_percentile(h, 99)),
           us(hdr_percentile(h, 99.9)), us(h->max), hdr_mean(h) / 1000.0);
    if (o->udp)
        printf("\"transport\":\"udp\",\"lost\":%llu,\"late\":%llu,", (unsigned long long)t->lost,
               (unsigned long long)t->late);
    if (o->never_read)
        printf("\"never_read_bytes\":{\"min\":%llu,\"max\":%llu,\"mean\":%.0f},",
               (unsigned long long)(t->nr_conns ? t->nr_min : 0), (unsigned long long)t->nr_max,
               t->nr_conns ? (double)t->nr_sum / t->nr_conns : 0.0);
    if (o->rate)
        json_schedule(o, t);
    if (o->rate_to || o->slo_ms)
        json_ramp(o);
    if (o->churn)
        json_churn(o, t);
    if (o->tls.on)
        printf("\"tls\":{\"handshakes\":%llu,\"resumed\":%llu},",
               (unsigned long long)t->tls_handshakes, (unsigned long long)t->tls_resumed);
    printf("\"cpu_s\":%.3f,\"cpu_us_per_msg\":%.3f,\"busy\":%.3f,\"cpus\":%u,"
           "\"threads_auto\":%s,\"self_limited\":%s,",
           t->cpu_s, cpu_us_per_msg(t), busy_share(t), t->cpus, o->threads_auto ? "true" : "false",
           busy_share(t) >= BUSY_LIMIT ? "true" : "false");
    if (t->retrans_known)
        printf("\"retransmits\":%llu,", (unsigned long long)t->retransmits);
    else
        printf("\"retransmits\":null,");
    printf("\"outstanding\":%llu,\"timed_out\":%llu,\"timeout_s\":%.3f,",
           (unsigned long long)t->outstanding, (unsigned long long)t->timed_out,
           (double)o->timeout_us / 1e6);
    printf("\"connect_failures\":%llu,\"ports_exhausted\":%llu,\"errors\":%llu,"
           "\"idle_closed\":%llu,\"first_error\":",
           (unsigned long long)t->connect_failures, (unsigned long long)t->ports_out,
           (unsigned long long)t->errors, (unsigned long long)t->idle_closed);
    if (t->first_error != NULL)
        json_string(t->first_error);
    else
        printf("null");
    printf("}\n");
}

/* The first line: what was run, how, and for how long. */
static void text_header(const struct bench_options *o, const char *backend, unsigned idle,
                        const struct totals *t)
{
    printf("echo-bench: %s, %u %s", o->connect, o->conns, o->udp ? "UDP flow(s)" : "connection(s)");
    if (idle)
        printf(" + %u idle", idle);
    printf(", %llu-byte messages, ", (unsigned long long)o->size);
    if (o->never_read)
        printf("never reading");
    else if (o->rate)
        printf("open loop at %llu msg/s", (unsigned long long)o->rate);
    else if (o->churn)
        printf("churn at %llu connects/s (at most %u open), depth %u", (unsigned long long)o->churn,
               o->conns, o->depth);
    else
        printf("closed loop, depth %u", o->depth);
    printf(", %u thread(s), backend %s, %.2f s measured\n", o->threads, backend, t->window_s);
}

void report_text(const struct bench_options *o, const char *backend, unsigned idle,
                 const struct totals *t)
{
    const struct hdr *h = &t->hist;
    text_header(o, backend, idle, t);
    if (o->never_read) {
        printf("server took    %.0f bytes per connection before pushing back (min %llu, max "
               "%llu)\n",
               t->nr_conns ? (double)t->nr_sum / t->nr_conns : 0.0,
               (unsigned long long)(t->nr_conns ? t->nr_min : 0), (unsigned long long)t->nr_max);
    } else {
        double w = t->window_s > 0 ? t->window_s : 1;
        printf("messages       %llu (%.0f/s)\n", (unsigned long long)t->messages,
               (double)t->messages / w);
        printf("throughput     %.2f MB/s echoed\n", (double)t->bytes / w / 1e6);
        print_percentiles("latency      ", h);
    }
    if (o->rate)
        text_schedule(o, t);
    if (o->rate_to || o->slo_ms)
        text_ramp(o);
    if (o->churn)
        text_churn(o, t);
    if (o->tls.on)
        printf("TLS            %llu handshake(s), %llu resumed a session\n",
               (unsigned long long)t->tls_handshakes, (unsigned long long)t->tls_resumed);
    if (o->udp)
        printf("datagrams lost %llu (no answer within %u ms), late %llu\n",
               (unsigned long long)t->lost, UDP_LOSS_MS, (unsigned long long)t->late);
    printf("echo-bench CPU %.2f s in %.2f s, %u thread(s) on %u CPU(s): %.0f%% busy", t->cpu_s,
           t->window_s, t->nthreads, t->cpus, busy_share(t) * 100);
    if (t->messages)
        printf(", %.2f us per message", cpu_us_per_msg(t));
    printf("\n");
    if (!o->rate && !o->never_read && busy_share(t) >= BUSY_LIMIT && t->nthreads < t->cpus)
        printf("note: echo-bench was at its limit; the messages/s may be its own, not the "
               "server's (--threads auto would use the %u CPU(s) it may run on)\n",
               t->cpus);
    else if (!o->rate && !o->never_read && busy_share(t) >= BUSY_LIMIT)
        printf("note: echo-bench was at its limit; the messages/s may be its own, not the "
               "server's (more --threads, or other CPUs, would tell)\n");
    printf("connect failures %llu, errors %llu", (unsigned long long)t->connect_failures,
           (unsigned long long)t->errors);
    if (!o->never_read && !o->udp)
        printf(", outstanding at the end %llu", (unsigned long long)t->outstanding);
    if (t->retrans_known)
        printf(", TCP retransmits %llu", (unsigned long long)t->retransmits);
    if (idle)
        printf(", idle connections closed by the server %llu", (unsigned long long)t->idle_closed);
    printf("\n");
}

static void totals_churn(struct totals *t, const struct churn *ch)
{
    hdr_merge(&t->connect_hist, &ch->connect_hist);
    t->churn_attempts += ch->attempts;
    t->churn_connected += ch->connected;
    t->churn_finished += ch->finished;
    for (int k = 0; k < CHURN_KINDS; k++)
        t->churn_failures[k] += ch->failures[k];
}

void totals_collect(struct totals *t, struct worker **workers, unsigned n,
                    const struct bench_options *o, double window_s)
{
    memset(t, 0, sizeof *t);
    hdr_init(&t->hist);
    hdr_init(&t->lag);
    hdr_init(&t->connect_hist);
    t->nr_min = UINT64_MAX;
    t->cpus = bench_usable_cpus();
    t->window_s = window_s;
    for (unsigned i = 0; i < n; i++) {
        const struct worker *w = workers[i];
        hdr_merge(&t->hist, &w->hist);
        if (w->lag != NULL)
            hdr_merge(&t->lag, w->lag);
        t->scheduled += w->scheduled;
        t->unsent += w->unsent;
        t->retransmits += w->retransmits;
        t->retrans_known += w->retrans_known;
        t->messages += w->messages;
        t->bytes += w->bytes;
        t->errors += w->errors;
        t->connect_failures += w->connect_failures;
        t->ports_out += w->ports_out;
        t->idle_closed += w->idle_closed;
        t->outstanding += w->outstanding;
        t->timed_out += w->timed_out;
        if (w->max_wait_ns > t->max_wait_ns)
            t->max_wait_ns = w->max_wait_ns;
        t->cpu_s += (double)w->cpu_window_ns / 1e9;
        t->nthreads++;
        t->lost += w->lost;
        t->late += w->late;
        t->fatal |= w->fatal;
        if (w->never_read_min < t->nr_min)
            t->nr_min = w->never_read_min;
        if (w->never_read_max > t->nr_max)
            t->nr_max = w->never_read_max;
        t->nr_sum += w->never_read_sum;
        if (w->churn != NULL)
            totals_churn(t, w->churn);
        t->tls_handshakes += w->tls_handshakes;
        t->tls_resumed += w->tls_resumed;
        if (t->first_error == NULL && w->first_error[0] != '\0')
            t->first_error = w->first_error;
    }
    if (o->never_read)
        t->nr_conns = o->conns - (unsigned)t->connect_failures - (unsigned)t->errors;
}
