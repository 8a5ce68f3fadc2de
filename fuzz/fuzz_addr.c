/* SPDX-License-Identifier: MIT */
/*
 * fuzz_addr.c - libFuzzer target for iomux_addr_parse(): any text must be
 * parsed or refused without a crash, and an address that parses must
 * format and parse back to the same address.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <iomux/net.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Host names would go to the resolver: slow, and not what this target is
   about. Only text without letters outside brackets is parsed (numeric
   IPv4, bracketed IPv6 with hex digits and scope ids, and junk). */
static int resolver_free(const char *text)
{
    int in_brackets = 0;
    for (const char *p = text; *p; p++) {
        if (*p == '[')
            in_brackets = 1;
        else if (*p == ']')
            in_brackets = 0;
        else if (!in_brackets && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 200)
        return 0;
    char text[201];
    memcpy(text, data, size);
    text[size] = '\0';
    if (!resolver_free(text))
        return 0;
    struct iomux_addr a;
    if (iomux_addr_parse(text, &a) != 0)
        return 0;
    char shown[IOMUX_ADDR_STRLEN];
    if (iomux_addr_format(&a, shown, sizeof(shown)) != 0)
        abort();
    /* Scope ids may be formatted by interface name, which needs no
       resolver; re-parse only the forms that stay numeric. */
    if (!resolver_free(shown))
        return 0;
    struct iomux_addr b;
    if (iomux_addr_parse(shown, &b) != 0 || a.len != b.len || memcmp(&a.ss, &b.ss, a.len) != 0)
        abort();
    return 0;
}
