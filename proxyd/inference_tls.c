/* TLS for inference.local: the leaf certificate issued from the local CA (CONFDIR/ca, made by
 * `sandboxctl ca init`), kept in memory only; the server context that presents it; the client
 * context for backends (system trust store, peer and host name verified); and the backends' API
 * keys.  Built from one config snapshot at start (as root, from the files) and at each reload (the
 * root-only files then come from the privileged helper, secrets.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include "common/policy.h"
#include "common/util.h"
#include "proxyd/inference_conn.h"
#include "proxyd/secrets.h"

#define LEAF_DAYS 30
#define LEAF_RENEW_S (2 * 24 * 3600)   /* re-issue when less than this is left */
#define KEY_MAX 4096

static int ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!e)
        return -1;
    int rc = X509_add_ext(cert, e, -1) ? 0 : -1;
    X509_EXTENSION_free(e);
    return rc;
}

/* A fresh P-256 key and a leaf for DNS:inference.local signed by the CA; installed into srv. */
static int issue_leaf(struct inf_state *s)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    BIGNUM *bn = NULL;
    int rc = -1;
    unsigned char serial[16];
    if (!key || !cert || RAND_bytes(serial, sizeof serial) != 1)
        goto out;
    serial[0] &= 0x7f;
    bn = BN_bin2bn(serial, sizeof serial, NULL);
    if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)))
        goto out;
    X509_set_version(cert, 2);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    time_t now = time(NULL);
    time_t until = now + LEAF_DAYS * 24 * 3600;
    /* Never outlive the CA: a verifier would reject the chain at the CA's end anyway. */
    struct tm tm;
    if (ASN1_TIME_to_tm(X509_get0_notAfter(s->ca), &tm) == 1 && timegm(&tm) < until)
        until = timegm(&tm);
    X509_time_adj_ex(X509_getm_notAfter(cert), 0, (long)(until - now), NULL);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)PS_INFERENCE_NAME, -1, -1, 0);
    X509_set_issuer_name(cert, X509_get_subject_name(s->ca));
    X509_set_pubkey(cert, key);
    if (ext(cert, s->ca, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
        ext(cert, s->ca, NID_key_usage, "critical,digitalSignature") < 0 ||
        ext(cert, s->ca, NID_ext_key_usage, "serverAuth") < 0 ||
        ext(cert, s->ca, NID_subject_alt_name, "DNS:" PS_INFERENCE_NAME) < 0 ||
        ext(cert, s->ca, NID_authority_key_identifier, "keyid:always") < 0)
        goto out;
    if (!X509_sign(cert, s->ca_key, EVP_sha256()))
        goto out;
    if (SSL_CTX_use_certificate(s->srv, cert) != 1 || SSL_CTX_use_PrivateKey(s->srv, key) != 1 ||
        SSL_CTX_check_private_key(s->srv) != 1)
        goto out;
    SSL_CTX_clear_chain_certs(s->srv);
    X509_up_ref(s->ca);
    if (SSL_CTX_add0_chain_cert(s->srv, s->ca) != 1) {
        X509_free(s->ca);
        goto out;
    }
    s->leaf_not_after = until;
    rc = 0;
out:
    BN_free(bn);
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

/* Offer only HTTP/1.1: inference.local speaks nothing else. */
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                   unsigned int inlen, void *arg)
{
    static const unsigned char h11[] = "\x08http/1.1";
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, h11, sizeof h11 - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static int read_key_file(const struct pd_secrets *sec, const char *path, char **out, char *err,
                         size_t errlen)
{
    unsigned char *buf;
    size_t n;
    if (pd_secret_read(sec, path, &buf, &n, err, errlen) < 0)
        return -1;
    size_t cap = n;
    if (n > KEY_MAX) {
        snprintf(err, errlen, "%s: longer than %d bytes", path, KEY_MAX);
        pd_secret_wipe(buf, cap);
        return -1;
    }
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        n--;
    /* The key goes into a header line: one token of visible ASCII, nothing that could end it. */
    bool ok = n > 0;
    for (size_t i = 0; i < n && ok; i++)
        ok = buf[i] > 0x20 && buf[i] < 0x7f;
    if (!ok) {
        snprintf(err, errlen, "%s: the key must be one line of visible ASCII characters", path);
        pd_secret_wipe(buf, cap);
        return -1;
    }
    *out = ps_xstrndup((const char *)buf, n);
    pd_secret_wipe(buf, cap);
    return 0;
}

/* The CA key: handed over by the helper on reload, else read (as root) after checking its mode. */
static EVP_PKEY *read_ca_key(const struct pd_secrets *sec, const char *path, char *err, size_t errlen)
{
    if (!sec) {
        struct ps_diags d = { 0 };
        if (ps_check_secret_file(path, &d) < 0 || d.n) {
            snprintf(err, errlen, "%s", d.n ? d.v[0].msg : "insecure key file");
            ps_diags_free(&d);
            return NULL;
        }
        ps_diags_free(&d);
    }
    unsigned char *buf;
    size_t n;
    if (pd_secret_read(sec, path, &buf, &n, err, errlen) < 0)
        return NULL;
    BIO *b = BIO_new_mem_buf(buf, (int)n);
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    pd_secret_wipe(buf, n);
    if (!k)
        snprintf(err, errlen, "%s: not a PEM private key", path);
    return k;
}

static void openssl_err(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char msg[200] = "";
    if (e)
        ERR_error_string_n(e, msg, sizeof msg);
    snprintf(err, errlen, "%s%s%s", what, e ? ": " : "", msg);
    ERR_clear_error();
}

struct inf_state *inf_state_load(const struct ps_config *cfg, const struct pd_secrets *sec, char *err,
                                 size_t errlen)
{
    struct inf_state *s = ps_xcalloc(1, sizeof *s);
    s->refs = 1;
    char path[4200];
    snprintf(path, sizeof path, "%s/ca/inference-ca.pem", cfg->dir);
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(err, errlen, "%s: %s (run 'sandboxctl ca init')", path, strerror(errno));
        goto fail;
    }
    s->ca = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (!s->ca) {
        openssl_err(err, errlen, path);
        goto fail;
    }
    snprintf(path, sizeof path, "%s/ca/inference-ca.key", cfg->dir);
    s->ca_key = read_ca_key(sec, path, err, errlen);
    if (!s->ca_key)
        goto fail;
    if (X509_check_private_key(s->ca, s->ca_key) != 1) {
        openssl_err(err, errlen, "the CA key does not match inference-ca.pem");
        goto fail;
    }
    s->srv = SSL_CTX_new(TLS_server_method());
    s->cli = SSL_CTX_new(TLS_client_method());
    if (!s->srv || !s->cli) {
        openssl_err(err, errlen, "SSL_CTX_new");
        goto fail;
    }
    for (SSL_CTX *c = s->srv; c; c = c == s->srv ? s->cli : NULL) {
        SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
        SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                SSL_MODE_RELEASE_BUFFERS);
        SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    }
    SSL_CTX_set_session_cache_mode(s->srv, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(s->srv, 0);
    SSL_CTX_set_alpn_select_cb(s->srv, alpn_cb, NULL);
    if (issue_leaf(s) < 0) {
        openssl_err(err, errlen, "issuing the inference.local leaf");
        goto fail;
    }
    if (SSL_CTX_set_default_verify_paths(s->cli) != 1) {
        openssl_err(err, errlen, "loading the system trust store");
        goto fail;
    }
    SSL_CTX_set_verify(s->cli, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_alpn_protos(s->cli, (const unsigned char *)"\x08http/1.1", 9);
    for (size_t i = 0; i < cfg->n_backends; i++) {
        const struct ps_backend *b = &cfg->backends[i];
        s->keys = ps_xrealloc(s->keys, s->n_keys + 1, sizeof *s->keys);
        struct inf_key *k = &s->keys[s->n_keys];
        k->backend = ps_xstrdup(b->name);
        k->url = ps_xstrdup(b->url);
        k->key_file = b->api_key_file ? ps_xstrdup(b->api_key_file) : NULL;
        k->value = NULL;
        s->n_keys++;
        if (b->api_key_file && read_key_file(sec, b->api_key_file, &k->value, err, errlen) < 0)
            goto fail;
    }
    return s;
fail:
    inf_state_unref(s);
    return NULL;
}

struct inf_state *inf_state_ref(struct inf_state *s)
{
    if (s)
        s->refs++;
    return s;
}

void inf_state_unref(struct inf_state *s)
{
    if (!s || --s->refs > 0)
        return;
    SSL_CTX_free(s->srv);
    SSL_CTX_free(s->cli);
    X509_free(s->ca);
    EVP_PKEY_free(s->ca_key);
    for (size_t i = 0; i < s->n_keys; i++) {
        free(s->keys[i].backend);
        free(s->keys[i].url);
        free(s->keys[i].key_file);
        if (s->keys[i].value) {
            OPENSSL_cleanse(s->keys[i].value, strlen(s->keys[i].value));
            free(s->keys[i].value);
        }
    }
    free(s->keys);
    free(s);
}

void inf_state_refresh_leaf(struct inf_state *s)
{
    if (s->leaf_not_after - time(NULL) < LEAF_RENEW_S)
        issue_leaf(s);
}

static bool same(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

const char *inf_state_key(const struct inf_state *s, const struct ps_backend *be, bool *ok)
{
    *ok = false;
    for (size_t i = 0; i < s->n_keys; i++)
        if (strcmp(s->keys[i].backend, be->name) == 0) {
            *ok = same(s->keys[i].url, be->url) && same(s->keys[i].key_file, be->api_key_file);
            return *ok ? s->keys[i].value : NULL;
        }
    return NULL;
}
