/* SPDX-License-Identifier: MIT */
/*
 * check.h - value-printing checks for the test programs.
 *
 * Every CHECK_* macro evaluates each argument exactly once. When a check
 * fails it prints file:line, the expression and the values, counts the
 * failure and carries on; it yields true or false, so a test that cannot go
 * on writes the early return itself: `if (!CHECK_OK(rc)) return;`.
 * A test program's main ends with `return check_exit();` (1 if any check
 * failed). check_skip() exits with 77, which CTest reports as skipped; it is
 * for a real reason only, and the reason is printed.
 */
#ifndef IOMUX_TESTS_CHECK_H
#define IOMUX_TESTS_CHECK_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures;

/* Whether operands whose order is `order` (negative: the left one is less,
   0: equal, positive: greater) satisfy `op` ("==", "<=", ...). */
static inline bool check_order(int order, const char *op)
{
    if (strcmp(op, "==") == 0)
        return order == 0;
    if (strcmp(op, "!=") == 0)
        return order != 0;
    if (strcmp(op, "<") == 0)
        return order < 0;
    if (strcmp(op, "<=") == 0)
        return order <= 0;
    if (strcmp(op, ">") == 0)
        return order > 0;
    if (strcmp(op, ">=") == 0)
        return order >= 0;
    fprintf(stderr, "check.h: unknown operator %s\n", op);
    abort();
}

static inline bool check_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: FAILED: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    check_failures++;
    return false;
}

static inline bool check_true(bool ok, const char *file, int line, const char *expr)
{
    return ok || check_fail(file, line, "CHECK(%s)", expr);
}

static inline bool check_i64(long long a, const char *op, long long b, const char *file, int line,
                             const char *ea, const char *eb)
{
    return check_order((a > b) - (a < b), op) ||
           check_fail(file, line, "%s %s %s: left = %lld, right = %lld", ea, op, eb, a, b);
}

static inline bool check_u64(uint64_t a, const char *op, uint64_t b, const char *file, int line,
                             const char *ea, const char *eb)
{
    return check_order((a > b) - (a < b), op) ||
           check_fail(file, line, "%s %s %s: left = %" PRIu64 ", right = %" PRIu64, ea, op, eb, a,
                      b);
}

/* rc is a "0 or negative errno" result; `want` is what the call must give. */
static inline bool check_errno(int rc, int want, const char *file, int line, const char *expr)
{
    if (rc == want)
        return true;
    return check_fail(file, line, "%s = %d (%s), expected %d (%s)", expr, rc,
                      rc < 0 ? strerror(-rc) : "not an error", want,
                      want < 0 ? strerror(-want) : "success");
}

/* rc is a "count or negative errno" result: anything >= 0 is success. */
static inline bool check_count(int rc, const char *file, int line, const char *expr)
{
    return rc >= 0 || check_fail(file, line, "%s = %d (%s)", expr, rc, strerror(-rc));
}

static inline bool check_str(const char *a, const char *b, const char *file, int line,
                             const char *ea, const char *eb)
{
    if (a && b && strcmp(a, b) == 0)
        return true;
    return check_fail(file, line, "%s == %s: left = \"%s\", right = \"%s\"", ea, eb,
                      a ? a : "(null)", b ? b : "(null)");
}

/* Prints a reason and exits 77 (skipped), unless a check already failed. */
static inline void check_skip(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "SKIP: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(check_failures ? 1 : 77);
}

/* Runs one test function between a header line and its verdict. */
static inline void check_run(const char *name, void (*fn)(void))
{
    int before = check_failures;
    fprintf(stderr, "== %s\n", name);
    fn();
    fprintf(stderr, "-- %s: %s\n", name, check_failures == before ? "ok" : "FAILED");
}

static inline int check_exit(void)
{
    if (check_failures)
        fprintf(stderr, "%d check(s) FAILED\n", check_failures);
    else
        fprintf(stderr, "all checks passed\n");
    return check_failures ? 1 : 0;
}

#define CHECK(cond) check_true((cond), __FILE__, __LINE__, #cond)
#define CHECK_INT(a, op, b)                                                                        \
    check_i64((long long)(a), #op, (long long)(b), __FILE__, __LINE__, #a, #b)
#define CHECK_U64(a, op, b) check_u64((uint64_t)(a), #op, (uint64_t)(b), __FILE__, __LINE__, #a, #b)
#define CHECK_EQ_INT(a, b)  CHECK_INT(a, ==, b)
#define CHECK_EQ_U64(a, b)  CHECK_U64(a, ==, b)
#define CHECK_STR(a, b)     check_str((a), (b), __FILE__, __LINE__, #a, #b)
/* A call returning 0 or a negative errno must return 0. */
#define CHECK_OK(expr) check_errno((expr), 0, __FILE__, __LINE__, #expr)
/* A call returning 0 or a negative errno must return `want` (e.g. -ENOENT). */
#define CHECK_ERRNO(expr, want) check_errno((expr), (want), __FILE__, __LINE__, #expr)
/* A call returning a count or a negative errno must not fail. */
#define CHECK_COUNT(expr) check_count((expr), __FILE__, __LINE__, #expr)

#endif /* IOMUX_TESTS_CHECK_H */
