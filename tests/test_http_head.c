/* SPDX-License-Identifier: MIT */
/*
 * test_http_head.c - echod's HTTP request-head parser (apps/echod/
 * http_head.h) on requests real clients send and on what it must refuse,
 * each also fed a byte at a time; and the agent's answers (apps/echod/
 * agent.h) as pure functions. The end-to-end tests (echod_metrics_e2e.py,
 * echod_agent_e2e.py) see the same answers through real sockets.
 */
#include "check.h"

#include <string.h>

#include "agent.h"
#include "http_head.h"

struct head_case {
    const char *text;
    enum http_head_status want;
    const char *method, *path; /* when HTTP_HEAD_OK */
};

static const struct head_case cases[] = {
    {"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\n",
     HTTP_HEAD_OK, "GET", "/metrics"},
    {"HEAD /metrics HTTP/1.1\r\nhost: x\r\n\r\n", HTTP_HEAD_OK, "HEAD", "/metrics"},
    {"GET /metrics?a=b HTTP/1.1\r\nHost: x\r\n\r\n", HTTP_HEAD_OK, "GET", "/metrics"},
    {"GET http://h:9/metrics?x HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_HEAD_OK, "GET", "/metrics"},
    {"GET https://h HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_HEAD_OK, "GET", "/"},
    {"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_HEAD_OK, "OPTIONS", "*"},
    {"GET /metrics HTTP/1.0\r\n\r\n", HTTP_HEAD_OK, "GET", "/metrics"},
    {"POST /x HTTP/1.1\r\nHost: h\r\nV: caf\xc3\xa9\t \r\n\r\n", HTTP_HEAD_OK, "POST", "/x"},
    {"GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n", HTTP_HEAD_VERSION, NULL, NULL},
    {"GET /metrics HTTP/1.1\nHost: x\n\n", HTTP_HEAD_BAD, NULL, NULL},             /* bare LF */
    {"GET /metrics HTTP/1.1\r\nHost: x\r\n b\r\n\r\n", HTTP_HEAD_BAD, NULL, NULL}, /* fold */
    {"GET /m\x01 HTTP/1.1\r\nHost: x\r\n\r\n", HTTP_HEAD_BAD, NULL, NULL},
    {"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", HTTP_HEAD_BAD, NULL, NULL},
    {"GET / HTTP/1.1\r\n\r\n", HTTP_HEAD_BAD, NULL, NULL}, /* no Host */
    {"GET / HTTP/1.1\r\nHost: a\r\nHOST: b\r\n\r\n", HTTP_HEAD_BAD, NULL, NULL},
    {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", HTTP_HEAD_BAD, NULL, NULL},
    {"GET / HTTP/1.1\r\n: x\r\n\r\n", HTTP_HEAD_BAD, NULL, NULL},
    {"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", HTTP_HEAD_BAD, NULL, NULL},
    {"GET metrics HTTP/1.1\r\nHost: x\r\n\r\n", HTTP_HEAD_BAD, NULL, NULL},
    {"CONNECT h:443 HTTP/1.1\r\nHost: x\r\n\r\n", HTTP_HEAD_BAD, NULL, NULL},
    {"GET / HTTP/1.1 \r\nHost: x\r\n\r\n", HTTP_HEAD_BAD, NULL, NULL},
    {"GET / HTTP/1.1\r\nHost: x\x7f\r\n\r\n", HTTP_HEAD_BAD, NULL, NULL},
    {"GET / HTTP/1.1\r\nHost: x\r\n\r\r\n", HTTP_HEAD_BAD, NULL, NULL},
    {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA / HTTP/1.1\r\nHost: x\r\n\r\n", HTTP_HEAD_BAD, NULL, NULL},
    {"\x16\x03\x01\x02\x00\x01", HTTP_HEAD_BAD, NULL, NULL}, /* a TLS hello */
    {"GET /metrics HTTP/1.1\r\nHost: x\r\n", HTTP_HEAD_MORE, NULL, NULL},
    {"", HTTP_HEAD_MORE, NULL, NULL},
};

static bool span_is(const char *p, size_t n, const char *want)
{
    return n == strlen(want) && memcmp(p, want, n) == 0;
}

static void check_case(const struct head_case *c)
{
    size_t len = strlen(c->text);
    struct http_head h;
    enum http_head_status got = http_head_parse(c->text, len, &h);
    if (!CHECK_EQ_INT(got, c->want)) {
        fprintf(stderr, "  for %s\n", c->text);
        return;
    }
    if (got == HTTP_HEAD_OK) {
        CHECK_EQ_U64(h.len, len);
        CHECK(span_is(h.method, h.method_len, c->method));
        CHECK(span_is(h.path, h.path_len, c->path));
    }
    /* A byte at a time: "more" until the deciding byte, then the same. */
    size_t first = len;
    for (size_t n = 0; n <= len; n++) {
        got = http_head_parse(c->text, n, &h);
        if (got != HTTP_HEAD_MORE && first == len)
            first = n;
        if (n >= first && !CHECK_EQ_INT(got, c->want))
            return;
    }
}

static void test_heads(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_case(&cases[i]);
}

static void test_agent(void)
{
    char line[32];
    CHECK_EQ_INT(agent_state_of(false, 5, 0), AGENT_UP);
    CHECK_EQ_INT(agent_state_of(false, 4, 4), AGENT_MAINT);
    CHECK_EQ_INT(agent_state_of(true, 4, 4), AGENT_DRAIN);
    CHECK_EQ_INT(agent_state_of(true, 0, 0), AGENT_DRAIN);
    CHECK_EQ_U64(agent_weight(0, 0), 0);
    CHECK_EQ_U64(agent_weight(0, 4), 100);
    CHECK_EQ_U64(agent_weight(1, 4), 75);
    CHECK_EQ_U64(agent_weight(1, 3), 67);
    CHECK_EQ_U64(agent_weight(999, 1000), 1); /* one free slot: never 0% (drain) */
    CHECK_EQ_U64(agent_weight(1000000000 - 1, 1000000000), 1);
    CHECK_EQ_U64(agent_weight(4, 4), 0);
    agent_reply(AGENT_UP, 0, line, sizeof(line));
    CHECK_STR(line, "up ready\n");
    agent_reply(AGENT_UP, 75, line, sizeof(line));
    CHECK_STR(line, "up ready 75%\n");
    agent_reply(AGENT_MAINT, 0, line, sizeof(line));
    CHECK_STR(line, "maint\n");
    CHECK_EQ_U64(agent_reply(AGENT_DRAIN, 50, line, sizeof(line)), 6);
    CHECK_STR(line, "drain\n");
}

int main(void)
{
    check_run("heads", test_heads);
    check_run("agent", test_agent);
    return check_exit();
}
