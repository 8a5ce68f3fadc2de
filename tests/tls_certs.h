/* SPDX-License-Identifier: MIT */
/*
 * tls_certs.h - test certificates made at run time, in process, into a
 * fresh temporary directory: self-signed P-256 certificates (each its own
 * CA) with their keys, as PEM files. Nothing is committed.
 */
#ifndef IOMUX_TESTS_TLS_CERTS_H
#define IOMUX_TESTS_TLS_CERTS_H

#include <stdio.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

static char dir[] = "/tmp/iomux-test-tls-XXXXXX";

static void path(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", dir, name);
}

/* A self-signed P-256 certificate (its own CA) and its key, as PEM files. */
static int make_cert(const char *name, long serial)
{
    char p[256];
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    int ok = k != NULL && x != NULL;
    if (ok) {
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
        X509_gmtime_adj(X509_getm_notBefore(x), -60);
        X509_gmtime_adj(X509_getm_notAfter(x), 86400);
        X509_set_pubkey(x, k);
        X509_NAME *n = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)name, -1, -1, 0);
        X509_set_issuer_name(x, n);
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "CA:TRUE");
        ok = e != NULL && X509_add_ext(x, e, -1) == 1 && X509_sign(x, k, EVP_sha256()) > 0;
        X509_EXTENSION_free(e);
    }
    snprintf(p, sizeof p, "%s/%s.pem", dir, name);
    FILE *f = ok ? fopen(p, "w") : NULL;
    ok = f != NULL && PEM_write_X509(f, x) == 1;
    if (f != NULL)
        fclose(f);
    snprintf(p, sizeof p, "%s/%s.key", dir, name);
    f = ok ? fopen(p, "w") : NULL;
    ok = f != NULL && PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1;
    if (f != NULL)
        fclose(f);
    X509_free(x);
    EVP_PKEY_free(k);
    return ok ? 0 : -1;
}

/* Removes the files make_cert() wrote for each name, and the directory. */
static void remove_certs(const char *const *names, size_t n)
{
    static const char *const suffixes[] = {".pem", ".key"};
    for (size_t i = 0; i < n * 2; i++) {
        char name[128], p[256];
        snprintf(name, sizeof name, "%s%s", names[i / 2], suffixes[i % 2]);
        path(p, sizeof p, name);
        unlink(p);
    }
    rmdir(dir);
}

#endif /* IOMUX_TESTS_TLS_CERTS_H */
