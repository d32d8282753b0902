/* inference.d/NAME.conf (DESIGN.md §3.3): one inference backend per file. */
#include <arpa/inet.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/config_int.h"
#include "common/policy.h"
#include "common/util.h"
#include "common/values.h"

const char *const ps_backend_sections[] = { "Backend", NULL };

/* http:// only reaches a backend on a private address (an IP literal, or localhost): the key
 * would otherwise cross networks in clear text.  Documentation ranges count as private here
 * because tests place their backends there and nothing real is ever routed to them. */
static bool http_host_ok(const char *host)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    struct ps_cidr doc[4];
    if (strcmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1)
        ss.ss_family = AF_INET;
    else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1)
        ss.ss_family = AF_INET6;
    else
        return false;
    ps_cidr_parse("192.0.2.0/24", &doc[0]);
    ps_cidr_parse("198.51.100.0/24", &doc[1]);
    ps_cidr_parse("203.0.113.0/24", &doc[2]);
    ps_cidr_parse("2001:db8::/32", &doc[3]);
    for (int i = 0; i < 4; i++)
        if (ps_cidr_contains(&doc[i], (struct sockaddr *)&ss))
            return true;
    enum ps_addr_class c = ps_addr_classify((struct sockaddr *)&ss, NULL);
    return c == PS_ADDR_LOOPBACK || c == PS_ADDR_PRIVATE || c == PS_ADDR_CGNAT ||
           c == PS_ADDR_LINK_LOCAL;
}

static int key_url(struct pctx *c, const struct ps_key *k, const char *val, unsigned line)
{
    struct ps_backend *b = c->b;
    const char *rest;
    char err[256];
    if (strncmp(val, "https://", 8) == 0) {
        b->tls = true;
        rest = val + 8;
    } else if (strncmp(val, "http://", 7) == 0) {
        b->tls = false;
        rest = val + 7;
    } else {
        ps_perr(c, line, "%s=%s: expected https://HOST[:PORT][/PATH]", k->name, val);
        return -1;
    }
    size_t hl = strcspn(rest, "/?#");
    if (rest[hl] == '?' || rest[hl] == '#' || strpbrk(rest, "?#")) {
        ps_perr(c, line, "%s=%s: a query or fragment is not allowed", k->name, val);
        return -1;
    }
    char *hp = ps_xstrndup(rest, hl);
    if (strchr(hp, '@')) {
        ps_perr(c, line, "%s=: credentials in the URL are not allowed (use APIKeyFile=)", k->name);
        free(hp);
        return -1;
    }
    char *host = NULL;
    uint16_t port;
    if (ps_parse_hostport(hp, &host, &port, b->tls ? 443 : 80, err, sizeof err) < 0) {
        ps_perr(c, line, "%s=%s: %s", k->name, val, err);
        free(hp);
        return -1;
    }
    free(hp);
    if (!b->tls && !http_host_ok(host)) {
        ps_perr(c, line, "%s=%s: http:// is only allowed for a backend on a private address; "
                "use https://", k->name, val);
        free(host);
        return -1;
    }
    const char *path = rest + hl;
    size_t pl = strlen(path);
    while (pl > 0 && path[pl - 1] == '/')
        pl--;
    for (size_t i = 0; i < pl; i++)
        if ((unsigned char)path[i] <= 0x20 || (unsigned char)path[i] >= 0x7f) {
            ps_perr(c, line, "%s=: invalid character in the path", k->name);
            free(host);
            return -1;
        }
    b->url = ps_xstrdup(val);
    b->url_line = line;
    b->url_host = host;
    b->url_port = port;
    b->url_path = ps_xstrndup(path, pl);
    return 0;
}

static int key_api(struct pctx *c, const struct ps_key *k, const char *val, unsigned line)
{
    if (strcmp(val, "openai") == 0)
        c->b->api = PS_API_OPENAI;
    else if (strcmp(val, "anthropic") == 0)
        c->b->api = PS_API_ANTHROPIC;
    else {
        ps_perr(c, line, "%s=%s: expected openai or anthropic", k->name, val);
        return -1;
    }
    return 0;
}

static int key_keyfile(struct pctx *c, const struct ps_key *k, const char *val, unsigned line)
{
    if (val[0] != '/' || strchr(val, ' ') || strchr(val, '\t')) {
        ps_perr(c, line, "%s=%s: expected an absolute path", k->name, val);
        return -1;
    }
    c->b->api_key_file = ps_xstrdup(val);
    return 0;
}

/* BackendUser=NAME or a numeric UID, resolved now: a name that no account has is an error here, not
 * a refused request later. */
static int key_owner(struct pctx *c, const struct ps_key *k, const char *val, unsigned line)
{
    struct ps_backend *b = c->b;
    uint64_t n;
    char err[128];
    if (*val >= '0' && *val <= '9') {
        if (ps_parse_uint(val, 0xfffffffeu, &n, err, sizeof err) < 0) {
            ps_perr(c, line, "%s=%s: %s", k->name, val, err);
            return -1;
        }
        b->owner_uid = (uid_t)n;
    } else {
        if (!ps_valid_account_name(val)) {
            ps_perr(c, line, "%s=%s: not a valid user name", k->name, val);
            return -1;
        }
        struct passwd pw, *res = NULL;
        char buf[4096];
        errno = 0;
        int rc = getpwnam_r(val, &pw, buf, sizeof buf, &res);
        if (!res) {
            ps_perr(c, line, "%s=%s: %s", k->name, val,
                    rc ? strerror(rc) : "no such account");
            return -1;
        }
        b->owner_uid = pw.pw_uid;
    }
    free(b->owner_name);
    b->owner_name = ps_xstrdup(val);
    b->has_owner = true;
    b->owner_line = line;
    return 0;
}

static int key_models(struct pctx *c, const struct ps_key *k, const char *val, unsigned line)
{
    struct ps_backend *b = c->b;
    const char *p = val;
    char *w;
    if (!*val) {
        ps_perr(c, line, "%s= needs at least one model", k->name);
        return -1;
    }
    while ((w = ps_next_word(&p))) {
        char *eq = strchr(w, '=');
        if (eq)
            *eq = 0;
        const char *name = w, *up = eq ? eq + 1 : w;
        if (!ps_valid_model_name(name) || !ps_valid_model_name(up)) {
            ps_perr(c, line, "%s=: '%s%s%s' is not NAME or NAME=UPSTREAM", k->name, name,
                    eq ? "=" : "", eq ? up : "");
            free(w);
            continue;
        }
        bool dup = false;
        for (size_t i = 0; i < b->n_models; i++)
            dup |= strcmp(b->models[i].name, name) == 0;
        if (dup)
            ps_perr(c, line, "%s=: model '%s' listed twice", k->name, name);
        else if (b->n_models >= PS_MAX_LIST)
            ps_perr(c, line, "%s=: too many models", k->name);
        else {
            b->models = ps_xrealloc(b->models, b->n_models + 1, sizeof *b->models);
            b->models[b->n_models].name = ps_xstrdup(name);
            b->models[b->n_models].upstream = ps_xstrdup(up);
            b->n_models++;
        }
        free(w);
    }
    return 0;
}

const struct ps_key ps_backend_keys[] = {
    { "Backend", "URL", 0, key_url, 0 },
    { "Backend", "API", 0, key_api, 0 },
    { "Backend", "APIKeyFile", 0, key_keyfile, 0 },
    { "Backend", "Models", KEY_REPEAT, key_models, 0 },
    { "Backend", "BackendUser", 0, key_owner, 0 },
};
const size_t ps_n_backend_keys = sizeof ps_backend_keys / sizeof ps_backend_keys[0];

void ps_backend_finish(struct pctx *c)
{
    struct ps_backend *b = c->b;
    static const char *required[] = { "URL", "API", "Models" };
    for (size_t r = 0; r < 3; r++)
        for (size_t i = 0; i < c->n_keys; i++)
            if (strcmp(c->keys[i].name, required[r]) == 0 && !c->seen[i])
                ps_perr(c, 0, "[Backend] %s= is required", required[r]);
    /* Nothing set is silently without effect: an https backend is told apart by its certificate. */
    if (b->has_owner && b->url && b->tls)
        ps_perr(c, b->owner_line, "BackendUser= applies to an http:// backend only (an https:// "
                "backend is identified by its certificate)");
    /* A request is routed by its model name: two backends offering one name would be ambiguous. */
    for (size_t i = 0; i < b->n_models; i++)
        for (size_t j = 0; j < c->cfg->n_backends; j++)
            for (size_t m = 0; m < c->cfg->backends[j].n_models; m++)
                if (strcmp(b->models[i].name, c->cfg->backends[j].models[m].name) == 0)
                    ps_perr(c, 0, "model '%s' is also offered by %s", b->models[i].name,
                            c->cfg->backends[j].file);
}

void ps_backend_free(struct ps_backend *b)
{
    free(b->name);
    free(b->file);
    free(b->url);
    free(b->url_host);
    free(b->url_path);
    free(b->api_key_file);
    free(b->owner_name);
    for (size_t i = 0; i < b->n_models; i++) {
        free(b->models[i].name);
        free(b->models[i].upstream);
    }
    free(b->models);
    memset(b, 0, sizeof *b);
}
