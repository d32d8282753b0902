/* What the backend receives, built from scratch (pure functions, unit-tested): the client's
 * allow-listed headers, re-serialised from the parsed head, and the backend request itself with
 * the backend's Host, its key, our framing, and the rewritten body.  Nothing of the client's head
 * is copied through unparsed, so nothing the allow-list does not name can reach the backend. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "common/util.h"
#include "proxyd/http_parse.h"
#include "proxyd/inference_int.h"

#define ANTHROPIC_VERSION_DEFAULT "2023-06-01"

int inf_client_headers(const struct http_fields *f, char *out, size_t cap, size_t *len,
                       char *anthropic_version, size_t avcap)
{
    size_t n = 0;
    anthropic_version[0] = 0;
    if (cap)
        out[0] = 0;
    for (size_t i = 0; i < f->n_headers; i++) {
        const struct http_header *h = &f->headers[i];
        if (!inf_header_forwarded(h->name.p, h->name.n))
            continue;
        if (!inf_header_value_ok(h->value.p, h->value.n))
            return -1;
        if (h->name.n == 17 && strncasecmp(h->name.p, "anthropic-version", 17) == 0) {
            if (h->value.n >= avcap || anthropic_version[0])
                return -1;                       /* too long, or given twice */
            memcpy(anthropic_version, h->value.p, h->value.n);
            anthropic_version[h->value.n] = 0;
            continue;
        }
        if (n + h->name.n + h->value.n + 5 > cap)
            return -1;
        n += (size_t)snprintf(out + n, cap - n, "%.*s: %.*s\r\n", (int)h->name.n, h->name.p,
                              (int)h->value.n, h->value.p);
    }
    *len = n;
    return 0;
}

static bool has_header(const char *hdrs, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = hdrs; *p;) {
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':')
            return true;
        const char *e = strstr(p, "\r\n");
        if (!e)
            break;
        p = e + 2;
    }
    return false;
}

char *inf_upstream_request(const struct ps_backend *be, enum inf_endpoint ep, const char *client_hdrs,
                           const char *anthropic_version, const char *key, const char *body, size_t blen,
                           size_t *outlen)
{
    char path[1024], host[300];
    if (inf_upstream_path(be->url_path, ep, path, sizeof path) < 0)
        return NULL;
    bool v6 = strchr(be->url_host, ':') != NULL;
    if (be->url_port == (be->tls ? 443 : 80))
        snprintf(host, sizeof host, v6 ? "[%s]" : "%s", be->url_host);
    else
        snprintf(host, sizeof host, v6 ? "[%s]:%u" : "%s:%u", be->url_host, (unsigned)be->url_port);
    char auth[KEY_HEADER_MAX];
    auth[0] = 0;
    if (be->api == PS_API_ANTHROPIC)
        snprintf(auth, sizeof auth, "anthropic-version: %s\r\n%s%s%s",
                 anthropic_version && *anthropic_version ? anthropic_version : ANTHROPIC_VERSION_DEFAULT,
                 key ? "x-api-key: " : "", key ? key : "", key ? "\r\n" : "");
    else if (key)
        snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", key);
    const char *ctype = has_header(client_hdrs, "content-type") ? "" : "Content-Type: application/json\r\n";
    int n = snprintf(NULL, 0, "POST %s HTTP/1.1\r\nHost: %s\r\n%s%s%sContent-Length: %zu\r\n"
                     "Accept-Encoding: identity\r\n\r\n", path, host, client_hdrs, ctype, auth, blen);
    if (n < 0)
        return NULL;
    char *out = ps_xmalloc((size_t)n + blen + 1);
    snprintf(out, (size_t)n + 1, "POST %s HTTP/1.1\r\nHost: %s\r\n%s%s%sContent-Length: %zu\r\n"
             "Accept-Encoding: identity\r\n\r\n", path, host, client_hdrs, ctype, auth, blen);
    memcpy(out + n, body, blen);
    out[(size_t)n + blen] = 0;
    *outlen = (size_t)n + blen;
    /* The buffer on the stack held the key too. */
    volatile char *v = auth;
    for (size_t i = 0; i < sizeof auth; i++)
        v[i] = 0;
    return out;
}
