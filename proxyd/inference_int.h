/* Internals of inference.local interception (DESIGN.md §5.4), shared by proxyd/inference_*.c.
 * The pure parts (request filter, JSON body, SSE framing, rate limiter) take buffers and return
 * results without touching the loop, so unit tests and fuzzers drive them directly. */
#ifndef PD_INFERENCE_INT_H
#define PD_INFERENCE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/config.h"

/* ---------------- request filter (inference_filter.c) ---------------- */
enum inf_endpoint {
    INF_EP_NONE = 0,
    INF_EP_CHAT,            /* POST /v1/chat/completions */
    INF_EP_COMPLETIONS,     /* POST /v1/completions */
    INF_EP_EMBEDDINGS,      /* POST /v1/embeddings */
    INF_EP_RESPONSES,       /* POST /v1/responses */
    INF_EP_MODELS,          /* GET  /v1/models (answered locally: the models this profile may use) */
    INF_EP_MESSAGES,        /* POST /v1/messages (anthropic) */
};

/* The endpoint of METHOD TARGET (origin-form; a query string is ignored and never forwarded), or
 * INF_EP_NONE.  *api is the API the endpoint belongs to.  Anything not listed is refused. */
enum inf_endpoint inf_endpoint_of(const char *method, size_t mlen, const char *target, size_t tlen,
                                  enum ps_api *api);
const char *inf_endpoint_path(enum inf_endpoint ep);    /* "/v1/chat/completions" */
/* Does the endpoint take a `stream` flag, and does OpenAI's stream_options apply to it? */
bool inf_endpoint_streams(enum inf_endpoint ep);
bool inf_endpoint_takes_stream_options(enum inf_endpoint ep);

/* Request headers forwarded to the backend (case-insensitive allow-list).  Credentials
 * (Authorization, x-api-key, Cookie, ...), hop-by-hop and framing headers are never on it: proxyd
 * sets Host, Content-Length and the backend's key itself. */
bool inf_header_forwarded(const char *name, size_t len);
/* Response headers passed back to the client (framing is proxyd's own). */
bool inf_resp_header_forwarded(const char *name, size_t len);

/* The path on the backend for an endpoint: URL=https://h/v1 + /v1/chat/completions gives
 * /v1/chat/completions, URL=https://h + /v1/messages gives /v1/messages, URL=https://h/openai/v1
 * gives /openai/v1/chat/completions.  0, or -1 when it does not fit. */
int inf_upstream_path(const char *url_path, enum inf_endpoint ep, char *out, size_t outlen);

/* Is a header value safe to put on a request line of ours (no CR, LF, NUL, other controls)? */
bool inf_header_value_ok(const char *v, size_t len);

/* Error bodies in the API's own shape.  type: the API's error type ("not_found_error" for
 * anthropic, "invalid_request_error" for openai, ...); code: OpenAI's code (may be NULL).
 * message is JSON-escaped here.  Returns a malloc'd string. */
char *inf_error_body(enum ps_api api, const char *type, const char *code, const char *message);
/* The SSE event that ends a stream cut short, parseable by the API's SDKs. */
char *inf_error_event(enum ps_api api, const char *message);

/* ---------------- the backend request (inference_upstream.c) ---------------- */
struct http_fields;
#define KEY_HEADER_MAX 4352                /* a key (at most 4096 bytes) and its header lines */
/* The client's allow-listed headers as "Name: value\r\n" lines into out (NUL-terminated, *len
 * bytes); anthropic-version goes to its own buffer (proxyd adds it, once).  -1 when a forwarded
 * value is not safe, too long, or anthropic-version repeats. */
int inf_client_headers(const struct http_fields *f, char *out, size_t cap, size_t *len,
                       char *anthropic_version, size_t avcap);
/* The complete request to the backend (malloc'd, *outlen bytes): POST to the backend's path, its
 * Host, the client's allow-listed headers, the backend's key (Authorization: Bearer for openai;
 * x-api-key and anthropic-version for anthropic), Content-Length, identity encoding, the body. */
char *inf_upstream_request(const struct ps_backend *be, enum inf_endpoint ep, const char *client_hdrs,
                           const char *anthropic_version, const char *key, const char *body, size_t blen,
                           size_t *outlen);

/* ---------------- JSON bodies (inference_json.c, json-c) ---------------- */
struct inf_usage {
    int64_t input_tokens, output_tokens;   /* -1 when not seen */
};

struct inf_body;                          /* a parsed request body */
enum inf_body_err { INF_BODY_OK = 0, INF_BODY_NOT_JSON, INF_BODY_NOT_OBJECT, INF_BODY_NO_MODEL,
                    INF_BODY_BAD_FIELD, INF_BODY_TOO_COMPLEX };
/* Parse a request body: a JSON object with a string "model" (at most 256 bytes). */
enum inf_body_err inf_body_parse(const char *buf, size_t len, struct inf_body **out);
const char *inf_body_model(const struct inf_body *b);
bool inf_body_stream(const struct inf_body *b);          /* "stream": true */
bool inf_body_client_wants_usage(const struct inf_body *b); /* stream_options.include_usage: true */
/* Set "model" to upstream and, when inject_usage, stream_options.include_usage=true.  Returns the
 * serialised body (malloc'd, *outlen bytes) or NULL. */
char *inf_body_rewrite(struct inf_body *b, const char *upstream_model, bool inject_usage,
                       size_t *outlen);
void inf_body_free(struct inf_body *b);
/* What in the body would make the provider reach the network on the user's behalf, where the
 * profile's [Network] rules never see it: a remote URL for it to fetch (images, files, documents;
 * data: URLs are fine), a tool it runs itself with network access (MCP servers, web search or
 * fetch), or a model chosen outside "model" (a "models" list, a tool's own model).  The reason, or
 * NULL when there is none. */
const char *inf_body_reach(const struct inf_body *b);
const char *inf_body_strerror(enum inf_body_err e);

/* Take token counts from a response body or one SSE data payload, whichever API's shape it has
 * (OpenAI usage.prompt_tokens/completion_tokens, Responses response.usage, Anthropic usage and
 * message.usage).  Fields found overwrite *u (streams report running totals).  Returns true if
 * any usage was found.  *usage_only: an OpenAI chunk with "choices": [] and a usage object (the
 * chunk include_usage adds, stripped when the client did not ask for it). */
bool inf_usage_scan(const char *buf, size_t len, struct inf_usage *u, bool *usage_only);
/* The same for a whole non-streamed answer, which may be large: parsed whole up to
 * INF_USAGE_FULL_PARSE_MAX, beyond that only the last "usage" object in the last INF_USAGE_TAIL
 * bytes (a 32 MiB answer parsed whole stalls the event loop for half a second). */
#define INF_USAGE_FULL_PARSE_MAX (1u << 20)
#define INF_USAGE_TAIL 65536u
bool inf_usage_scan_answer(const char *buf, size_t len, struct inf_usage *u);

/* ---------------- SSE framing (inference_sse.c) ---------------- */
#define INF_SSE_MAX_EVENT (1u << 20)      /* a larger event is a broken stream */
struct inf_sse {
    char *buf;
    size_t len, cap;
    size_t off;                           /* bytes at the front returned as the last event */
    size_t scan;                          /* bytes of buf already known to hold no event end */
    int prev;                             /* what precedes buf[scan]: 0 line start, 'x' in a
                                             line, 'r' just after a CR that ended a line */
};
/* Append stream bytes (drain every event with inf_sse_next after each feed).  -1 when the
 * bytes held (an incomplete event plus len) would exceed INF_SSE_MAX_EVENT. */
int inf_sse_feed(struct inf_sse *s, const char *data, size_t len);
/* The next complete event (raw bytes, including its terminating blank line), or 0 when none is
 * complete yet.  The bytes stay valid until the next call to any inf_sse_* function. */
size_t inf_sse_next(struct inf_sse *s, const char **ev);
/* Bytes held that do not form a complete event (a stream that ends here was cut short). */
size_t inf_sse_pending(const struct inf_sse *s);
void inf_sse_free(struct inf_sse *s);
/* The joined data: lines of one event ("data: a\ndata: b" -> "a\nb"), into a malloc'd buffer;
 * *name gets the event: field (or "" when absent; at most namecap-1 bytes).  Returns NULL if the
 * event has no data line. */
char *inf_sse_data(const char *ev, size_t len, size_t *datalen, char *name, size_t namecap);

/* ---------------- rate limit (inference_rate.c) ---------------- */
struct inf_rate;
struct inf_rate *inf_rate_new(void);
void inf_rate_free(struct inf_rate *r);
/* A token bucket per UID holding rpm requests, refilled continuously over a minute.  Returns 0
 * when a request may go now (and takes a token), else the seconds after which one may (>= 1). */
unsigned inf_rate_take(struct inf_rate *r, uint32_t uid, unsigned rpm, uint64_t now_ms);

/* Does buf quote the backend key, as is or with JSON's escaped "/"? (inference_filter.c)  A narrow
 * check, for a backend that echoes what it was sent: other escapes or an encoding would hide it. */
bool inf_quotes_key(const char *buf, size_t n, const char *key);

/* ---------------- request-body memory (inference_budget.c) ---------------- */
/* What one account, and the daemon, may hold in request bodies: at least these, and at least
 * MaxRequestSize (one account) and 4 x MaxRequestSize (the daemon), so that one request of the
 * largest size allowed always fits. */
#define INF_BUDGET_ACCOUNT (64ull << 20)
#define INF_BUDGET_DAEMON (256ull << 20)
enum inf_budget_err { INF_BUDGET_OK = 0, INF_BUDGET_ACCOUNT_FULL, INF_BUDGET_DAEMON_FULL };
struct inf_budget;
struct inf_budget *inf_budget_new(void);
void inf_budget_free(struct inf_budget *b);
uint64_t inf_budget_account_max(uint64_t max_request);
uint64_t inf_budget_daemon_max(uint64_t max_request);
/* Reserve n bytes for uid, or refuse (nothing reserved) when the account's or the daemon's bound
 * would be passed. */
enum inf_budget_err inf_budget_take(struct inf_budget *b, uint32_t uid, uint64_t n, uint64_t max_request);
void inf_budget_give(struct inf_budget *b, uint32_t uid, uint64_t n);
uint64_t inf_budget_held(const struct inf_budget *b, uint32_t uid);

/* ---------------- model routing (inference_filter.c) ---------------- */
enum inf_route_err { INF_ROUTE_OK = 0, INF_ROUTE_UNKNOWN, INF_ROUTE_NOT_ALLOWED, INF_ROUTE_WRONG_API };
/* The backend (and its entry) that lists model for this API, checked against the profile. */
enum inf_route_err inf_route(const struct ps_config *cfg, const struct ps_profile *p, enum ps_api api,
                             const char *model, const struct ps_backend **be,
                             const struct ps_model_map **mm);
bool inf_profile_allows(const struct ps_profile *p, const char *model);
/* GET /v1/models: the models of backends of this API that the profile may use (malloc'd JSON). */
char *inf_models_list(const struct ps_config *cfg, const struct ps_profile *p, enum ps_api api);

#endif
