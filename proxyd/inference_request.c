/* A complete request to inference.local: route it by model to the admin's backend (or answer it
 * here: the model list, a model the profile does not allow, an unknown model, the rate limit),
 * rewrite the body, and build the backend request with the backend's key and only allow-listed
 * client headers.  Every request leaves one decision-log line (inf_log); none holds a key, a token
 * or a body. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include "common/util.h"
#include "proxyd/inference_conn.h"

/* JSON string literal of s (quotes included), or "null": the decision log's own escaper, which
 * shortens a long value without cutting an escape in half (a model name of control characters
 * is six times longer escaped, and a truncated "\u00" made the whole record unparseable). */
static void json_str(char *out, size_t cap, const char *s)
{
    pd_json_str(out, cap, s);
}

/* The rule an inference record names: where the profile's models come from. */
static void models_rule(const struct inf_conn *k, char *rule, size_t n)
{
    const struct ps_profile *p = k->who.profile;
    if (p && p->models_origin.file)
        snprintf(rule, n, "%s:%u", p->models_origin.file, p->models_origin.line);
    else
        snprintf(rule, n, "default");
}

void inf_log_close(struct inf_conn *k)
{
    char rule[512];
    models_rule(k, rule, sizeof rule);
    struct pd_log_entry e = {
        .who = &k->who,
        .host = "inference.local",
        .port = 443,
        .address = NULL,
        .decision = "close",
        .reason = "closed",
        .rule = rule,
        .binary = NULL,
        .bytes_up = k->bytes_up,
        .bytes_down = k->bytes_down,
        .duration_ms = (int64_t)(pd_now_ms() - k->accepted_ms),
    };
    pd_log_decision(&e);
}

void inf_log(struct inf_conn *k, const char *decision, const char *reason, const char *model,
             const char *upstream_model, const char *backend, int status, const struct inf_usage *u)
{
    char m[600], um[600], be[300], extra[2048], rule[512];
    json_str(m, sizeof m, model);
    json_str(um, sizeof um, upstream_model);
    json_str(be, sizeof be, backend);
    int n = snprintf(extra, sizeof extra, "\"model\":%s,\"upstream_model\":%s,\"backend\":%s,\"status\":%d,"
                     "\"path\":\"%s\",\"stream\":%s", m, um, be, status,
                     k->ep != INF_EP_NONE ? inf_endpoint_path(k->ep) : "",
                     k->up && k->up->stream_req ? "true" : "false");
    if (u && n > 0 && (size_t)n < sizeof extra)
        snprintf(extra + n, sizeof extra - (size_t)n, ",\"input_tokens\":%lld,\"output_tokens\":%lld",
                 (long long)u->input_tokens, (long long)u->output_tokens);
    n = (int)strlen(extra);
    if (k->up && k->up->owner_uid >= 0 && (size_t)n < sizeof extra)
        snprintf(extra + n, sizeof extra - (size_t)n, ",\"backend_owner_uid\":%lld", (long long)k->up->owner_uid);
    models_rule(k, rule, sizeof rule);
    struct pd_log_entry e = {
        .who = &k->who,
        .host = "inference.local",
        .port = 443,
        .address = k->up && k->up->address[0] ? k->up->address : NULL,
        .decision = decision,
        .reason = reason,
        .rule = rule,
        .binary = NULL,
        .bytes_up = -1,
        .bytes_down = -1,
        .duration_ms = k->started_ms ? (int64_t)(pd_now_ms() - k->started_ms) : -1,
        .extra_json = extra,
    };
    pd_log_decision(&e);
}

static void api_error(struct inf_conn *k, int status, const char *type, const char *code,
                      const char *message, const char *extra_headers)
{
    char *body = inf_error_body(k->api, type, code, message);
    inf_conn_respond(k, status, extra_headers, "application/json", body, strlen(body), false);
    free(body);
}

bool inf_request_admit(struct inf_conn *k)
{
    const struct ps_profile *p = k->who.profile;
    unsigned wait = inf_rate_take(inf_daemon_rate(), k->who.uid, p->requests_per_minute, pd_now_ms());
    if (!wait)
        return true;
    char hdr[64], msg[256];
    snprintf(hdr, sizeof hdr, "Retry-After: %u\r\n", wait);
    snprintf(msg, sizeof msg, "Rate limit reached: %u requests per minute for this account; "
             "retry after %u s", p->requests_per_minute, wait);
    char *body = inf_error_body(k->api, k->api == PS_API_ANTHROPIC ? "rate_limit_error" : "requests",
                                "rate_limit_exceeded", msg);
    inf_conn_respond(k, 429, hdr, "application/json", body, strlen(body), true);   /* body unread */
    free(body);
    inf_log(k, "deny", "rate_limited", NULL, NULL, NULL, 429, NULL);
    return false;
}

void inf_request_handle(struct inf_conn *k)
{
    const struct ps_config *cfg = k->who.conf->cfg;
    const struct ps_profile *p = k->who.profile;
    if (k->ep == INF_EP_MODELS) {
        char *list = inf_models_list(cfg, p, PS_API_OPENAI);
        inf_conn_respond(k, 200, NULL, "application/json", list, strlen(list), false);
        free(list);
        inf_log(k, "allow", "models_list", NULL, NULL, NULL, 200, NULL);
        return;
    }
    char msg[512];
    struct inf_body *b = NULL;
    enum inf_body_err be_err = inf_body_parse(inf_buf_data(&k->body), inf_buf_used(&k->body), &b);
    if (be_err != INF_BODY_OK) {
        api_error(k, 400, "invalid_request_error", NULL, inf_body_strerror(be_err), NULL);
        inf_log(k, "deny", "bad_body", NULL, NULL, NULL, 400, NULL);
        return;
    }
    /* A copy: rewriting the body frees the string the parsed body holds. */
    char model[257];
    snprintf(model, sizeof model, "%s", inf_body_model(b));
    const char *reach = inf_body_reach(b);
    if (reach) {
        char hdr[96];
        snprintf(hdr, sizeof hdr, "X-Sandbox-Deny: %s\r\n", reach);
        snprintf(msg, sizeof msg, "the request would have the provider reach the network itself (%s: "
                 "a remote URL, a server-side tool or another model); inference.local carries only "
                 "requests whose inputs are in the body", reach);
        api_error(k, 403, k->api == PS_API_ANTHROPIC ? "permission_error" : "invalid_request_error",
                  reach, msg, hdr);
        inf_log(k, "deny", reach, model, NULL, NULL, 403, NULL);
        inf_body_free(b);
        return;
    }
    const struct ps_backend *be;
    const struct ps_model_map *mm;
    switch (inf_route(cfg, p, k->api, model, &be, &mm)) {
    case INF_ROUTE_OK:
        break;
    case INF_ROUTE_NOT_ALLOWED:
        snprintf(msg, sizeof msg, "the model '%s' is not allowed for this account (ask the "
                 "administrator to add it to the profile's [Inference] Models=)", model);
        api_error(k, 403, k->api == PS_API_ANTHROPIC ? "permission_error" : "invalid_request_error",
                  "model_not_allowed", msg, "X-Sandbox-Deny: model_not_allowed\r\n");
        inf_log(k, "deny", "model_not_allowed", model, NULL, NULL, 403, NULL);
        inf_body_free(b);
        return;
    default:
        if (k->api == PS_API_ANTHROPIC)
            snprintf(msg, sizeof msg, "model: %s", model);
        else
            snprintf(msg, sizeof msg, "The model `%s` does not exist or you do not have access to it.", model);
        api_error(k, 404, k->api == PS_API_ANTHROPIC ? "not_found_error" : "invalid_request_error",
                  "model_not_found", msg, NULL);
        inf_log(k, "deny", "model_not_found", model, NULL, NULL, 404, NULL);
        inf_body_free(b);
        return;
    }
    bool stream = inf_body_stream(b) && inf_endpoint_streams(k->ep);
    /* Usage is only sent in an OpenAI stream when asked for; ask, and hide the extra chunk from
     * a client that did not. */
    bool inject = stream && k->api == PS_API_OPENAI && inf_endpoint_takes_stream_options(k->ep) &&
                  !inf_body_client_wants_usage(b);
    size_t blen = 0;
    char *body = inf_body_rewrite(b, mm->upstream, inject, &blen);
    bool key_ok;
    const char *key = inf_state_key(k->st, be, &key_ok);
    if (!key_ok) {
        free(body);
        inf_body_free(b);
        api_error(k, 503, "api_error", NULL,
                  "the backend's credentials are not loaded for its current configuration; "
                  "tell the administrator", NULL);
        inf_log(k, "deny", "backend_key_unavailable", model, NULL, be->name, 503, NULL);
        return;
    }
    size_t rlen = 0;
    char *req = body ? inf_upstream_request(be, k->ep, k->hdrs, k->anthropic_version, key, body, blen, &rlen)
                     : NULL;
    free(body);
    if (!req) {
        inf_body_free(b);
        api_error(k, 500, "api_error", NULL, "could not build the backend request", NULL);
        inf_log(k, "deny", "internal_error", model, NULL, be->name, 500, NULL);
        return;
    }
    struct inf_up *u = inf_up_start(k, be, req, rlen);
    OPENSSL_cleanse(req, rlen);              /* it held the key */
    free(req);
    snprintf(u->model, sizeof u->model, "%s", model);
    snprintf(u->upstream_model, sizeof u->upstream_model, "%s", mm->upstream);
    u->strip_usage_chunk = inject;
    u->stream_req = stream;
    inf_body_free(b);
    k->up = u;
}
