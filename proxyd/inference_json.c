/* JSON request and response bodies of inference.local (json-c): the "model" field (read and
 * rewritten), OpenAI's stream_options.include_usage (injected so usage can be logged), and token
 * usage in either API's shape.  Bodies are hostile input: json-c's tokener is given an explicit
 * length and a depth limit, and anything but an object with a string model is refused. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <json-c/json.h>
#include "common/util.h"
#include "proxyd/inference_int.h"

#define INF_JSON_DEPTH 64
#define INF_MODEL_MAX 256
/* json-c builds an object of about 100 bytes per value: a 10 MiB body of "[0,0,0,...]" took 1.4 s
 * and 370 MB in the one event loop (security review), whatever its model.  Real requests are
 * mostly long strings (messages, base64 images) with few values; the most numerous legitimate
 * ones are token-ID arrays, which OpenAI caps at 300,000 tokens per request. */
#define INF_JSON_MAX_VALUES 1000000u

/* buf[i] opens a JSON string: the index just past its closing quote (len when it never closes).
 * The scans below are not a parser; they only must never mistake a string's bytes for structure. */
static size_t past_string(const char *buf, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (buf[i] == '\\')
            i++;
        else if (buf[i] == '"')
            return i + 1;
    }
    return len;
}

/* More than INF_JSON_MAX_VALUES values (counted by their separators and openers, outside
 * strings), in one cheap pass before anything is allocated. */
static bool too_many_values(const char *buf, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        char ch = buf[i];
        if (ch == '"') {
            i = past_string(buf, len, i);
            continue;
        }
        if ((ch == ',' || ch == '[' || ch == '{') && ++n > INF_JSON_MAX_VALUES)
            return true;
        i++;
    }
    return false;
}

struct inf_body {
    json_object *root;
};

static json_object *parse(const char *buf, size_t len)
{
    if (len > INT32_MAX)
        return NULL;
    json_tokener *tok = json_tokener_new_ex(INF_JSON_DEPTH);
    if (!tok)
        return NULL;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *o = json_tokener_parse_ex(tok, buf, (int)len);
    /* The whole buffer must be one value: trailing bytes are a smuggling attempt or garbage. */
    if (o && (json_tokener_get_error(tok) != json_tokener_success ||
              json_tokener_get_parse_end(tok) != len)) {
        size_t end = json_tokener_get_parse_end(tok);
        for (; end < len; end++)
            if (buf[end] != ' ' && buf[end] != '\t' && buf[end] != '\r' && buf[end] != '\n')
                break;
        if (end != len || json_tokener_get_error(tok) != json_tokener_success) {
            json_object_put(o);
            o = NULL;
        }
    }
    json_tokener_free(tok);
    return o;
}

enum inf_body_err inf_body_parse(const char *buf, size_t len, struct inf_body **out)
{
    *out = NULL;
    if (too_many_values(buf, len))
        return INF_BODY_TOO_COMPLEX;
    json_object *root = parse(buf, len);
    if (!root)
        return INF_BODY_NOT_JSON;
    if (!json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        return INF_BODY_NOT_OBJECT;
    }
    json_object *m;
    if (!json_object_object_get_ex(root, "model", &m) || !json_object_is_type(m, json_type_string) ||
        json_object_get_string_len(m) == 0 || json_object_get_string_len(m) > INF_MODEL_MAX ||
        strlen(json_object_get_string(m)) != (size_t)json_object_get_string_len(m)) {
        json_object_put(root);
        return INF_BODY_NO_MODEL;
    }
    json_object *s;
    if (json_object_object_get_ex(root, "stream", &s) && !json_object_is_type(s, json_type_boolean) &&
        !json_object_is_type(s, json_type_null)) {
        json_object_put(root);
        return INF_BODY_BAD_FIELD;
    }
    if (json_object_object_get_ex(root, "stream_options", &s) && !json_object_is_type(s, json_type_object) &&
        !json_object_is_type(s, json_type_null)) {
        json_object_put(root);
        return INF_BODY_BAD_FIELD;
    }
    struct inf_body *b = ps_xcalloc(1, sizeof *b);
    b->root = root;
    *out = b;
    return INF_BODY_OK;
}

const char *inf_body_model(const struct inf_body *b)
{
    json_object *m = NULL;
    json_object_object_get_ex(b->root, "model", &m);
    return json_object_get_string(m);
}

bool inf_body_stream(const struct inf_body *b)
{
    json_object *s;
    return json_object_object_get_ex(b->root, "stream", &s) && json_object_get_boolean(s);
}

bool inf_body_client_wants_usage(const struct inf_body *b)
{
    json_object *so, *iu;
    return json_object_object_get_ex(b->root, "stream_options", &so) &&
           json_object_is_type(so, json_type_object) &&
           json_object_object_get_ex(so, "include_usage", &iu) && json_object_get_boolean(iu);
}

char *inf_body_rewrite(struct inf_body *b, const char *upstream_model, bool inject_usage, size_t *outlen)
{
    json_object_object_add(b->root, "model", json_object_new_string(upstream_model));
    if (inject_usage) {
        json_object *so;
        if (!json_object_object_get_ex(b->root, "stream_options", &so) ||
            !json_object_is_type(so, json_type_object)) {
            so = json_object_new_object();
            json_object_object_add(b->root, "stream_options", so);
        }
        json_object_object_add(so, "include_usage", json_object_new_boolean(1));
    }
    size_t n = 0;
    const char *s = json_object_to_json_string_length(b->root, JSON_C_TO_STRING_PLAIN |
                                                      JSON_C_TO_STRING_NOSLASHESCAPE, &n);
    if (!s)
        return NULL;
    *outlen = n;
    return ps_xstrndup(s, n);
}

/* ---- what the body would make the provider reach (inf_body_reach) ---- */

static bool has_prefix_ci(const char *s, const char *p)
{
    return strncasecmp(s, p, strlen(p)) == 0;
}

/* A URL the provider would fetch itself: a key that names one whose value is anything but inline
 * content.  An allow-list (data: only), because a provider may read URLs as browsers do (WHATWG:
 * leading C0 controls and spaces trimmed, tabs and newlines dropped anywhere, other schemes of its
 * own), and any spelling it would still fetch must not pass.  An empty value names nothing. */
static bool remote_url(const char *key, json_object *v)
{
    static const char *const keys[] = { "url", "image_url", "file_url", "server_url", "document_url",
                                        "audio_url", "video_url" };
    if (!json_object_is_type(v, json_type_string))
        return false;
    bool named = false;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        named |= strcmp(key, keys[i]) == 0;
    if (!named)
        return false;
    const unsigned char *s = (const unsigned char *)json_object_get_string(v);
    size_t n = (size_t)json_object_get_string_len(v), i = 0;
    while (i < n && s[i] <= 0x20)
        i++;
    if (i == n)
        return false;
    /* the first five bytes that are not tab or newline must spell "data:" */
    static const char want[] = "data:";
    size_t got = 0;
    for (; i < n && got < 5; i++) {
        if (s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
            continue;
        unsigned char c = want[got] == ':' ? s[i] : (unsigned char)(s[i] | 0x20);   /* letters: any case */
        if (c != (unsigned char)want[got])
            return true;
        got++;
    }
    return got < 5;
}

static const char *walk_urls(json_object *o)
{
    if (json_object_is_type(o, json_type_array)) {
        for (size_t i = 0, n = json_object_array_length(o); i < n; i++) {
            const char *r = walk_urls(json_object_array_get_idx(o, i));
            if (r)
                return r;
        }
    } else if (json_object_is_type(o, json_type_object)) {
        json_object_object_foreach(o, key, v) {
            if (remote_url(key, v))
                return "remote_url_not_allowed";
            const char *r = walk_urls(v);
            if (r)
                return r;
        }
    }
    return NULL;
}

/* A tool the provider runs itself with network access (it would fetch, search or call what the
 * user names), or that picks a model of its own. */
static bool server_tool(json_object *t)
{
    static const char *const types[] = { "mcp", "web_search", "web_fetch", "image_generation",
                                         "url_context", "browser" };
    json_object *ty, *x;
    if (!json_object_is_type(t, json_type_object))
        return false;
    if (json_object_object_get_ex(t, "server_url", &x) || json_object_object_get_ex(t, "model", &x))
        return true;
    if (!json_object_object_get_ex(t, "type", &ty) || !json_object_is_type(ty, json_type_string))
        return false;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (has_prefix_ci(json_object_get_string(ty), types[i]))
            return true;
    return false;
}

const char *inf_body_reach(const struct inf_body *b)
{
    json_object *x;
    if (json_object_object_get_ex(b->root, "mcp_servers", &x) && !json_object_is_type(x, json_type_null))
        return "server_tools_not_allowed";
    if (json_object_object_get_ex(b->root, "models", &x) && !json_object_is_type(x, json_type_null))
        return "model_list_not_allowed";
    if (json_object_object_get_ex(b->root, "tools", &x) && json_object_is_type(x, json_type_array))
        for (size_t i = 0, n = json_object_array_length(x); i < n; i++)
            if (server_tool(json_object_array_get_idx(x, i)))
                return "server_tools_not_allowed";
    return walk_urls(b->root);
}

void inf_body_free(struct inf_body *b)
{
    if (!b)
        return;
    json_object_put(b->root);
    free(b);
}

const char *inf_body_strerror(enum inf_body_err e)
{
    switch (e) {
    case INF_BODY_OK: return "ok";
    case INF_BODY_NOT_JSON: return "the request body is not valid JSON";
    case INF_BODY_NOT_OBJECT: return "the request body is not a JSON object";
    case INF_BODY_NO_MODEL: return "the request body has no valid \"model\" string";
    case INF_BODY_BAD_FIELD: return "\"stream\" or \"stream_options\" has the wrong type";
    case INF_BODY_TOO_COMPLEX: return "the request body has more than 1000000 JSON values";
    }
    return "invalid body";
}

static bool get_count(json_object *usage, const char *key, int64_t *out)
{
    json_object *v;
    if (!usage || !json_object_is_type(usage, json_type_object) ||
        !json_object_object_get_ex(usage, key, &v) || !json_object_is_type(v, json_type_int))
        return false;
    int64_t n = json_object_get_int64(v);
    if (n < 0)
        return false;
    *out = n;
    return true;
}

static bool scan_usage_obj(json_object *usage, struct inf_usage *u)
{
    bool found = false;
    found |= get_count(usage, "prompt_tokens", &u->input_tokens);
    found |= get_count(usage, "completion_tokens", &u->output_tokens);
    found |= get_count(usage, "input_tokens", &u->input_tokens);
    found |= get_count(usage, "output_tokens", &u->output_tokens);
    return found;
}

bool inf_usage_scan(const char *buf, size_t len, struct inf_usage *u, bool *usage_only)
{
    if (usage_only)
        *usage_only = false;
    json_object *root = too_many_values(buf, len) ? NULL : parse(buf, len);
    if (!root)
        return false;
    bool found = false;
    if (json_object_is_type(root, json_type_object)) {
        json_object *usage = NULL, *inner = NULL, *choices = NULL;
        if (json_object_object_get_ex(root, "usage", &usage))
            found |= scan_usage_obj(usage, u);
        /* Responses API (response.completed) and Anthropic message_start nest it one deeper. */
        if (json_object_object_get_ex(root, "response", &inner) &&
            json_object_object_get_ex(inner, "usage", &usage))
            found |= scan_usage_obj(usage, u);
        if (json_object_object_get_ex(root, "message", &inner) &&
            json_object_is_type(inner, json_type_object) &&
            json_object_object_get_ex(inner, "usage", &usage))
            found |= scan_usage_obj(usage, u);
        if (usage_only && json_object_object_get_ex(root, "usage", &usage) &&
            json_object_is_type(usage, json_type_object) &&
            json_object_object_get_ex(root, "choices", &choices) &&
            json_object_is_type(choices, json_type_array) && json_object_array_length(choices) == 0)
            *usage_only = true;
    }
    json_object_put(root);
    return found;
}

/* The '}' closing the object that opens at buf[0] ('{'), strings and escapes skipped; NULL when it
 * does not close within len bytes. */
static const char *object_end(const char *buf, size_t len)
{
    size_t depth = 0;
    for (size_t i = 0; i < len;) {
        char ch = buf[i];
        if (ch == '"') {
            i = past_string(buf, len, i);
            continue;
        }
        if (ch == '{')
            depth++;
        else if (ch == '}' && --depth == 0)
            return buf + i;
        i++;
    }
    return NULL;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

bool inf_usage_scan_answer(const char *buf, size_t len, struct inf_usage *u)
{
    if (len <= INF_USAGE_FULL_PARSE_MAX)
        return inf_usage_scan(buf, len, u, NULL);
    /* Too large to parse in the event loop: every API puts usage last, so take the last "usage"
     * key of the tail and parse its object alone.  In valid JSON an unescaped "usage" followed by
     * ':' is a key (a string's own quotes are escaped), so a model's output cannot forge one. */
    const char *tail = buf + len - INF_USAGE_TAIL, *end = buf + len;
    for (const char *p = end - 7; p >= tail; p--) {
        if (memcmp(p, "\"usage\"", 7) != 0)
            continue;
        const char *q = p + 7;
        while (q < end && is_ws(*q)) q++;
        if (q == end || *q != ':')
            continue;
        for (q++; q < end && is_ws(*q); q++) {}
        if (q == end || *q != '{')
            continue;
        const char *close = object_end(q, (size_t)(end - q) < 4096 ? (size_t)(end - q) : 4096);
        if (!close)
            continue;
        json_object *usage = parse(q, (size_t)(close - q) + 1);
        bool found = usage && scan_usage_obj(usage, u);
        json_object_put(usage);
        if (found)
            return true;
    }
    return false;
}
