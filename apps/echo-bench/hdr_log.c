/* SPDX-License-Identifier: MIT */
/*
 * hdr_log.c - see hdr_log.h. One z_stream is initialised at open and
 * reset per interval (deflateInit allocates about 256 KiB; doing that once
 * keeps intervals allocation-free), and the three buffers are sized for
 * the worst case, a histogram with every count non-zero and huge.
 */
#include "hdr_log.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#define COMPRESSED_HEADER 8u /* cookie, deflated length */

struct hdrlog {
    FILE *out;
    z_stream z;
    size_t zcap; /* bytes for the compressed form, header included */
    uint8_t *raw;
    uint8_t *packed;
    char *b64;
};

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 with padding, as java.util.Base64's basic encoder. */
static size_t base64_encode(const uint8_t *in, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? b64_alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

static int b64_value(char c)
{
    const char *at = c ? strchr(b64_alphabet, c) : NULL;
    return at ? (int)(at - b64_alphabet) : -1;
}

/* Decodes padded base64; returns the bytes written, or -1. */
static long base64_decode(const char *in, size_t len, uint8_t *out)
{
    if (len % 4 != 0)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int pad = (in[i + 3] == '=') + (in[i + 2] == '=' && in[i + 3] == '=');
        if (pad && i + 4 != len)
            return -1;
        uint32_t v = 0;
        for (int k = 0; k < 4 - pad; k++) {
            int d = b64_value(in[i + (size_t)k]);
            if (d < 0)
                return -1;
            v |= (uint32_t)d << (18 - 6 * k);
        }
        out[o++] = (uint8_t)(v >> 16);
        if (pad < 2)
            out[o++] = (uint8_t)(v >> 8);
        if (pad < 1)
            out[o++] = (uint8_t)v;
    }
    return (long)o;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void free_log(struct hdrlog *log)
{
    deflateEnd(&log->z);
    free(log->raw);
    free(log->packed);
    free(log->b64);
    free(log);
}

/* The header lines, as HistogramLogWriter's outputLogFormatVersion,
   outputStartTime, outputBaseTime and outputLegend write them. */
static int write_header(FILE *out, double start_epoch)
{
    time_t secs = (time_t)start_epoch;
    struct tm tm;
    char date[64];
    if (!gmtime_r(&secs, &tm) || !strftime(date, sizeof date, "%a %b %d %H:%M:%S UTC %Y", &tm))
        strcpy(date, "unknown");
    fprintf(out, "#[Histogram log format version 1.3]\n");
    fprintf(out, "#[StartTime: %.3f (seconds since epoch), %s]\n", start_epoch, date);
    fprintf(out, "#[BaseTime: %.3f (seconds since epoch)]\n", start_epoch);
    fprintf(out, "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\","
                 "\"Interval_Compressed_Histogram\"\n");
    return ferror(out) ? -1 : 0;
}

struct hdrlog *hdrlog_open(FILE *out, double start_epoch)
{
    struct hdrlog *log = calloc(1, sizeof *log);
    if (!log)
        return NULL;
    if (deflateInit(&log->z, Z_DEFAULT_COMPRESSION) != Z_OK) {
        free(log);
        errno = ENOMEM;
        return NULL;
    }
    log->out = out;
    errno = 0;
    log->zcap = COMPRESSED_HEADER + deflateBound(&log->z, HDR_V2_MAX);
    log->raw = malloc(HDR_V2_MAX);
    log->packed = malloc(log->zcap);
    log->b64 = malloc((log->zcap + 2) / 3 * 4 + 1);
    if (!log->raw || !log->packed || !log->b64) {
        free_log(log);
        errno = ENOMEM;
        return NULL;
    }
    if (write_header(out, start_epoch) < 0) {
        if (errno == 0)
            errno = EIO;
        free_log(log);
        return NULL;
    }
    return log;
}

const char *hdrlog_encode(struct hdrlog *log, const struct hdr *h, size_t *len)
{
    size_t raw_len = hdr_encode_v2(h, log->raw);
    if (deflateReset(&log->z) != Z_OK)
        return NULL;
    log->z.next_in = log->raw;
    log->z.avail_in = (uInt)raw_len;
    log->z.next_out = log->packed + COMPRESSED_HEADER;
    log->z.avail_out = (uInt)(log->zcap - COMPRESSED_HEADER);
    if (deflate(&log->z, Z_FINISH) != Z_STREAM_END)
        return NULL;
    put_be32(log->packed, HDR_V2_COMPRESSED_COOKIE);
    put_be32(log->packed + 4, (uint32_t)log->z.total_out);
    *len = base64_encode(log->packed, COMPRESSED_HEADER + log->z.total_out, log->b64);
    return log->b64;
}

int hdrlog_interval(struct hdrlog *log, const struct hdr *interval, double start, double length)
{
    size_t len;
    const char *b64 = hdrlog_encode(log, interval, &len);
    if (!b64) {
        errno = EINVAL;
        return -1;
    }
    /* Interval_Max as HistogramLogWriter: getMaxValue() (the highest
       equivalent value) over maxValueUnitRatio 10^6, so ms. */
    uint64_t max = interval->total ? hdr_highest_equivalent(interval->max) : 0;
    errno = 0;
    if (fprintf(log->out, "%.3f,%.3f,%.3f,%s\n", start, length, (double)max / 1e6, b64) < 0 ||
        ferror(log->out)) {
        if (errno == 0)
            errno = EIO;
        return -1;
    }
    return 0;
}

int hdrlog_close(struct hdrlog *log)
{
    if (!log)
        return 0;
    errno = 0;
    int rc = fflush(log->out) == 0 && !ferror(log->out) ? 0 : -1;
    if (rc < 0 && errno == 0)
        errno = EIO;
    int saved = errno;
    free_log(log);
    errno = saved;
    return rc;
}

/* Inflates a compressed encoding (cookie, length, zlib stream) into h. */
static int decode_packed(const uint8_t *packed, size_t len, struct hdr *h)
{
    if (len < COMPRESSED_HEADER || get_be32(packed) != HDR_V2_COMPRESSED_COOKIE ||
        get_be32(packed + 4) > len - COMPRESSED_HEADER)
        return -1;
    uint8_t *raw = malloc(HDR_V2_MAX);
    if (!raw)
        return -1;
    uLongf raw_len = HDR_V2_MAX;
    int rc = -1;
    if (uncompress(raw, &raw_len, packed + COMPRESSED_HEADER, get_be32(packed + 4)) == Z_OK)
        rc = hdr_decode_v2(h, raw, raw_len);
    free(raw);
    return rc;
}

int hdrlog_decode(const char *b64, size_t len, struct hdr *h)
{
    uint8_t *packed = malloc(len / 4 * 3 + 3);
    if (!packed)
        return -1;
    long n = base64_decode(b64, len, packed);
    int rc = n < 0 ? -1 : decode_packed(packed, (size_t)n, h);
    free(packed);
    return rc;
}
