/* What of a client's request to inference.local may reach a backend (DESIGN.md §5.4): the API
 * paths, the header allow-list, the backend path, model routing against the profile, and error
 * bodies in each API's own shape.  Pure functions over buffers (unit-tested, no I/O). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <json-c/json.h>
#include "common/policy.h"
#include "common/util.h"
#include "proxyd/inference_int.h"

static const struct {
    const char *method, *path;
    enum inf_endpoint ep;
    enum ps_api api;
} endpoints[] = {
    { "POST", "/v1/chat/completions", INF_EP_CHAT, PS_API_OPENAI },
    { "POST", "/v1/completions", INF_EP_COMPLETIONS, PS_API_OPENAI },
    { "POST", "/v1/embeddings", INF_EP_EMBEDDINGS, PS_API_OPENAI },
    { "POST", "/v1/responses", INF_EP_RESPONSES, PS_API_OPENAI },
    { "GET", "/v1/models", INF_EP_MODELS, PS_API_OPENAI },
    { "POST", "/v1/messages", INF_EP_MESSAGES, PS_API_ANTHROPIC },
};

static bool span_eq(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

enum inf_endpoint inf_endpoint_of(const char *method, size_t mlen, const char *target, size_t tlen,
                                  enum ps_api *api)
{
    const char *q = memchr(target, '?', tlen);
    size_t plen = q ? (size_t)(q - target) : tlen;
    for (size_t i = 0; i < sizeof endpoints / sizeof endpoints[0]; i++) {
        /* Exact bytes: no case folding, no dot segments, no percent-decoding, so there is
         * nothing to normalise differently from the backend. */
        if (span_eq(method, mlen, endpoints[i].method) && span_eq(target, plen, endpoints[i].path)) {
            *api = endpoints[i].api;
            return endpoints[i].ep;
        }
    }
    return INF_EP_NONE;
}

const char *inf_endpoint_path(enum inf_endpoint ep)
{
    for (size_t i = 0; i < sizeof endpoints / sizeof endpoints[0]; i++)
        if (endpoints[i].ep == ep)
            return endpoints[i].path;
    return NULL;
}

bool inf_endpoint_streams(enum inf_endpoint ep)
{
    return ep == INF_EP_CHAT || ep == INF_EP_COMPLETIONS || ep == INF_EP_RESPONSES ||
           ep == INF_EP_MESSAGES;
}

bool inf_endpoint_takes_stream_options(enum inf_endpoint ep)
{
    return ep == INF_EP_CHAT || ep == INF_EP_COMPLETIONS;
}

static bool in_list(const char *const *list, const char *name, size_t len)
{
    for (; *list; list++)
        if (strlen(*list) == len && strncasecmp(*list, name, len) == 0)
            return true;
    return false;
}

bool inf_header_forwarded(const char *name, size_t len)
{
    static const char *const allowed[] = {
        "content-type", "accept", "user-agent", "anthropic-version", "anthropic-beta",
        "openai-beta", "idempotency-key", NULL,
    };
    return in_list(allowed, name, len);
}

bool inf_resp_header_forwarded(const char *name, size_t len)
{
    static const char *const allowed[] = {
        "content-type", "retry-after", "x-request-id", "request-id", "openai-processing-ms",
        "cache-control", NULL,
    };
    return in_list(allowed, name, len);
}

int inf_upstream_path(const char *url_path, enum inf_endpoint ep, char *out, size_t outlen)
{
    const char *path = inf_endpoint_path(ep);
    if (!path)
        return -1;
    size_t ul = strlen(url_path);
    /* URL=.../v1 already names the version that every endpoint path starts with. */
    if (ul >= 3 && strcmp(url_path + ul - 3, "/v1") == 0)
        path += 3;
    int n = snprintf(out, outlen, "%s%s", url_path, path);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

bool inf_header_value_ok(const char *v, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

char *inf_error_body(enum ps_api api, const char *type, const char *code, const char *message)
{
    json_object *err = json_object_new_object();
    json_object *root = json_object_new_object();
    if (api == PS_API_ANTHROPIC) {
        json_object_object_add(root, "type", json_object_new_string("error"));
        json_object_object_add(err, "type", json_object_new_string(type));
        json_object_object_add(err, "message", json_object_new_string(message));
    } else {
        json_object_object_add(err, "message", json_object_new_string(message));
        json_object_object_add(err, "type", json_object_new_string(type));
        json_object_object_add(err, "param", NULL);
        json_object_object_add(err, "code", code ? json_object_new_string(code) : NULL);
    }
    json_object_object_add(root, "error", err);
    char *s = ps_xstrdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(root);
    return s;
}

char *inf_error_event(enum ps_api api, const char *message)
{
    /* OpenAI SDKs throw on a data payload with an "error" member; Anthropic's on "event: error". */
    char *body = inf_error_body(api, api == PS_API_ANTHROPIC ? "api_error" : "server_error",
                                api == PS_API_ANTHROPIC ? NULL : "stream_interrupted", message);
    size_t n = strlen(body) + 64;
    char *ev = ps_xmalloc(n);
    snprintf(ev, n, "%sdata: %s\n\n", api == PS_API_ANTHROPIC ? "event: error\n" : "", body);
    free(body);
    return ev;
}

bool inf_profile_allows(const struct ps_profile *p, const char *model)
{
    if (!ps_profile_uses_inference(p))
        return false;
    if (p->all_models)
        return true;
    for (size_t i = 0; i < p->n_models; i++)
        if (strcmp(p->models[i], model) == 0)
            return true;
    return false;
}

enum inf_route_err inf_route(const struct ps_config *cfg, const struct ps_profile *p, enum ps_api api,
                             const char *model, const struct ps_backend **be,
                             const struct ps_model_map **mm)
{
    *be = NULL;
    *mm = NULL;
    for (size_t i = 0; i < cfg->n_backends; i++) {
        const struct ps_backend *b = &cfg->backends[i];
        for (size_t m = 0; m < b->n_models; m++) {
            if (strcmp(b->models[m].name, model) != 0)
                continue;
            /* A name the profile may not use answers 403 whatever else is true of it. */
            if (!inf_profile_allows(p, model))
                return INF_ROUTE_NOT_ALLOWED;
            if (b->api != api)
                return INF_ROUTE_WRONG_API;
            *be = b;
            *mm = &b->models[m];
            return INF_ROUTE_OK;
        }
    }
    return INF_ROUTE_UNKNOWN;
}

char *inf_models_list(const struct ps_config *cfg, const struct ps_profile *p, enum ps_api api)
{
    json_object *root = json_object_new_object();
    json_object *data = json_object_new_array();
    for (size_t i = 0; i < cfg->n_backends; i++) {
        const struct ps_backend *b = &cfg->backends[i];
        if (b->api != api)
            continue;
        for (size_t m = 0; m < b->n_models; m++) {
            if (!inf_profile_allows(p, b->models[m].name))
                continue;
            json_object *o = json_object_new_object();
            json_object_object_add(o, "id", json_object_new_string(b->models[m].name));
            json_object_object_add(o, "object", json_object_new_string("model"));
            json_object_object_add(o, "created", json_object_new_int(0));
            json_object_object_add(o, "owned_by", json_object_new_string(b->name));
            json_object_array_add(data, o);
        }
    }
    json_object_object_add(root, "object", json_object_new_string("list"));
    json_object_object_add(root, "data", data);
    char *s = ps_xstrdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(root);
    return s;
}

bool inf_quotes_key(const char *buf, size_t n, const char *key)
{
    size_t kl = strlen(key);
    if (!kl || memmem(buf, n, key, kl))
        return kl != 0;
    /* JSON may write "/" as "\\/" (json-c does by default), and keys may hold "/" */
    if (!strchr(key, '/'))
        return false;
    char *esc = ps_xcalloc(2 * kl + 1, 1);
    size_t e = 0;
    for (size_t i = 0; i < kl; i++) {
        if (key[i] == '/')
            esc[e++] = '\\';
        esc[e++] = key[i];
    }
    bool found = memmem(buf, n, esc, e) != NULL;
    free(esc);
    return found;
}
