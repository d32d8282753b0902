/* Internal to common/config_*.c: the parse context and the keyword tables (one per file kind,
 * like OpenSSH's keyword table), so that adding a key is one table line and one handler. */
#ifndef PS_CONFIG_INT_H
#define PS_CONFIG_INT_H

#include "common/config.h"

#define PS_MAX_FILE_SIZE (1u << 20)   /* a config file larger than this is an error */
#define PS_MAX_LIST 4096              /* entries per list key (rules, groups, models, ...) */

struct pctx;
struct ps_key;
typedef int (*ps_key_fn)(struct pctx *c, const struct ps_key *k, const char *val, unsigned line);

enum { KEY_REPEAT = 1 };              /* may appear more than once; values accumulate */

struct ps_key {
    const char *section;
    const char *name;
    unsigned flags;
    ps_key_fn fn;
    int arg;                          /* handler-specific (e.g. the RLIMIT_ of a Limit* key) */
};

struct pctx {
    struct ps_config *cfg;
    enum ps_file_kind kind;
    const char *file;                 /* for messages */
    const char *origin_file;          /* stable storage for ps_origin.file */
    struct ps_diags *diags;
    unsigned errors;
    const struct ps_key *keys;
    size_t n_keys;
    unsigned *seen;                   /* per key: line of its first occurrence, 0 = not yet */
    bool first;                       /* the key being handled is at its first occurrence */
    const char *section;              /* current known section, NULL before any / unknown */
    unsigned match_line;              /* line of the [Match] header (profiles) */
    struct ps_profile *p;
    struct ps_backend *b;
};

void ps_perr(struct pctx *c, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
struct ps_origin ps_origin_at(const struct pctx *c, unsigned line);

extern const struct ps_key ps_global_keys[];
extern const size_t ps_n_global_keys;
extern const struct ps_key ps_profile_keys[];
extern const size_t ps_n_profile_keys;
extern const struct ps_key ps_backend_keys[];
extern const size_t ps_n_backend_keys;
extern const char *const ps_global_sections[], *const ps_profile_sections[],
    *const ps_backend_sections[];

/* The Limit* handler (config_limits.c). */
int ps_key_limit(struct pctx *c, const struct ps_key *k, const char *val, unsigned line);

/* Rule parsing (rule.c): "HOST[:PORTS] [binary=PATH]".  0 or -1 with err. */
int ps_rule_parse(const char *val, enum ps_rule_action action, struct ps_rule *out, char *err,
                  size_t errlen);
void ps_rule_free(struct ps_rule *r);

/* Name syntax of accounts and groups (as Debian's useradd accepts, plus a bound). */
bool ps_valid_account_name(const char *s);
bool ps_valid_model_name(const char *s);

void ps_global_defaults(struct ps_global *g);
void ps_global_free(struct ps_global *g);
void ps_profile_defaults(struct ps_profile *p);
void ps_profile_free(struct ps_profile *p);
void ps_backend_free(struct ps_backend *b);
/* End-of-file checks (required keys, [Match] present, cross-file model clashes). */
void ps_global_finish(struct pctx *c);
void ps_profile_finish(struct pctx *c);
void ps_backend_finish(struct pctx *c);

#endif
