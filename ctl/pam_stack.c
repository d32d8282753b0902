/* libpam's control fields and stack walk (ctl/pam_stack.h).  The parser follows libpam's own, quirks
 * included: a value or action is recognised by its name as a prefix, names are case-sensitive,
 * "default=" fills only the values not named before it, a jump of 0 or any syntax error turns every
 * action into "bad", and the keywords are case-insensitive. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "ctl/pam_stack.h"

#define ACT_UNDEF (-6)
#define MAX_JUMP 100000           /* further than any stack: a jump that long is a bad jump anyway */

_Static_assert(PAM_STACK_NVALUES == _PAM_RETURN_VALUES, "libpam's return values changed");

/* libpam's names, indexed by return value; "default" follows them. */
static const char *const value_names[PAM_STACK_NVALUES + 1] = {
    "success", "open_err", "symbol_err", "service_err", "system_err", "buf_err", "perm_denied",
    "auth_err", "cred_insufficient", "authinfo_unavail", "user_unknown", "maxtries",
    "new_authtok_reqd", "acct_expired", "session_err", "cred_unavail", "cred_expired", "cred_err",
    "no_module_data", "conv_err", "authtok_err", "authtok_recover_err", "authtok_lock_busy",
    "authtok_disable_aging", "try_again", "ignore", "abort", "authtok_expired", "module_unknown",
    "bad_item", "conv_again", "incomplete", "default",
};
_Static_assert(PAM_SYSTEM_ERR == 4 && PAM_MODULE_UNKNOWN == 28 && PAM_INCOMPLETE == 31,
               "value_names is indexed by libpam's return values");

/* indexed by -action */
static const char *const action_names[] = { "ignore", "ok", "done", "bad", "die", "reset" };

const char *pam_value_name(int value)
{
    return value >= 0 && value <= PAM_STACK_NVALUES ? value_names[value] : "?";
}

const char *pam_action_name(int act, char *buf, size_t len)
{
    if (act > 0)
        snprintf(buf, len, "%d", act);
    else if (act > ACT_UNDEF)
        snprintf(buf, len, "%s", action_names[-act]);
    else
        snprintf(buf, len, "?");
    return buf;
}

const char *pam_control_explain(const struct pam_control *c, int value, char *buf, size_t len)
{
    char a[16];
    bool named = c->given & (1u << value);
    snprintf(buf, len, "%s=%s", named ? value_names[value] : "default",
             pam_action_name(c->act[value], a, sizeof a));
    return buf;
}

static void fill_undef(struct pam_control *c, int act)
{
    for (int v = 0; v < PAM_STACK_NVALUES; v++)
        if (c->act[v] == ACT_UNDEF)
            c->act[v] = act;
}

static const char *skip_space(const char *p)
{
    while (isspace((unsigned char)*p))
        p++;
    return p;
}

/* The first name of names[0..n) that p starts with, its index, or -1. */
static int prefix_of(const char *const *names, int n, const char **p)
{
    for (int i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        if (strncmp(names[i], *p, l) == 0) {
            *p += l;
            return i;
        }
    }
    return -1;
}

/* One "value=action" at *p: false on a syntax error. */
static bool parse_pair(const char **p, struct pam_control *c)
{
    const char *q = *p;
    int value = prefix_of(value_names, PAM_STACK_NVALUES + 1, &q);
    if (value < 0 || !*q)
        return false;
    q = skip_space(q);
    if (*q++ != '=')
        return false;
    q = skip_space(q);
    int act = prefix_of(action_names, (int)(sizeof action_names / sizeof *action_names), &q);
    if (act >= 0) {
        act = -act;
    } else {
        if (!isdigit((unsigned char)*q))
            return false;
        long n = 0;
        for (; isdigit((unsigned char)*q); q++)
            n = n < MAX_JUMP ? n * 10 + (*q - '0') : MAX_JUMP;
        if (n == 0)
            return false;         /* libpam refuses a jump of 0: "ignore" says that */
        act = (int)(n < MAX_JUMP ? n : MAX_JUMP);
    }
    if (value == PAM_STACK_NVALUES) {
        fill_undef(c, act);
    } else {
        c->act[value] = act;
        c->given |= 1u << value;
    }
    *p = q;
    return true;
}

/* The body of "[...]" (or a bare "value=action" list, which libpam reads the same way). */
static void parse_pairs(const char *body, struct pam_control *c)
{
    const char *p = body;
    while (*(p = skip_space(p)))
        if (!parse_pair(&p, c)) {
            for (int v = 0; v < PAM_STACK_NVALUES; v++)
                c->act[v] = PAM_ACT_BAD;
            c->given = 0;
            return;
        }
    fill_undef(c, PAM_ACT_BAD);
}

/* required, requisite, optional, sufficient: success (and new_authtok_reqd) first, then the rest. */
static bool parse_keyword(const char *kw, struct pam_control *c)
{
    static const struct { const char *name; int success, ignore, rest; } kws[] = {
        { "required", PAM_ACT_OK, PAM_ACT_IGNORE, PAM_ACT_BAD },
        { "requisite", PAM_ACT_OK, PAM_ACT_IGNORE, PAM_ACT_DIE },
        { "optional", PAM_ACT_OK, ACT_UNDEF, PAM_ACT_IGNORE },
        { "sufficient", PAM_ACT_DONE, ACT_UNDEF, PAM_ACT_IGNORE },
    };
    for (size_t i = 0; i < sizeof kws / sizeof *kws; i++) {
        if (strcasecmp(kw, kws[i].name) != 0)
            continue;
        c->act[PAM_SUCCESS] = c->act[PAM_NEW_AUTHTOK_REQD] = kws[i].success;
        c->given = 1u << PAM_SUCCESS | 1u << PAM_NEW_AUTHTOK_REQD;
        if (kws[i].ignore != ACT_UNDEF) {
            c->act[PAM_IGNORE] = kws[i].ignore;
            c->given |= 1u << PAM_IGNORE;
        }
        fill_undef(c, kws[i].rest);
        return true;
    }
    return false;
}

enum pam_control_kind pam_control_parse(const char *control, struct pam_control *c)
{
    for (int v = 0; v < PAM_STACK_NVALUES; v++)
        c->act[v] = ACT_UNDEF;
    c->given = 0;
    if (strcasecmp(control, "include") == 0)
        return PAM_CONTROL_INCLUDE;
    if (strcasecmp(control, "substack") == 0)
        return PAM_CONTROL_SUBSTACK;
    if (parse_keyword(control, c))
        return PAM_CONTROL_MODULE;
    char body[1024];
    size_t l = strlen(control);
    if (control[0] == '[' && l >= 2 && control[l - 1] == ']')
        snprintf(body, sizeof body, "%.*s", (int)(l - 2), control + 1);
    else
        snprintf(body, sizeof body, "%s", control);
    parse_pairs(body, c);
    return PAM_CONTROL_MODULE;
}

int pam_failure_passes(const struct pam_control *c)
{
    /* ok and done make the failure the stack's result; bad and die refuse; everything else (ignore,
     * reset, a jump) leaves the result to the other modules. */
    static const int failures[] = { PAM_SYSTEM_ERR, PAM_MODULE_UNKNOWN };
    for (size_t i = 0; i < sizeof failures / sizeof *failures; i++) {
        int a = c->act[failures[i]];
        if (a != PAM_ACT_OK && a != PAM_ACT_DONE && a != PAM_ACT_BAD && a != PAM_ACT_DIE)
            return failures[i];
    }
    return -1;
}

/* Where a jump of n from s[i] ends: the last module it passes over, or n when it runs out of its
 * level first (libpam's "bad jump", which fails the stack). */
static size_t jump_end(const struct pam_step *s, size_t n, size_t i, int jump)
{
    int level = s[i].level;
    size_t k = i;
    while (jump > 0 && k + 1 < n && s[k + 1].level >= level) {
        do
            k++;          /* a deeper substack is passed over whole: it counts as one module */
        while (k + 1 < n && s[k + 1].level > level);
        jump--;
    }
    return jump ? n : k;
}

/* "done" ends s[i]'s substack (or the stack): does s[at] lie within it? */
static bool in_scope_after(const struct pam_step *s, size_t i, size_t at)
{
    for (size_t k = i + 1; k <= at; k++)
        if (s[k].level < s[i].level)
            return false;
    return true;
}

int pam_step_skips(const struct pam_step *s, size_t n, size_t i, size_t at)
{
    if (!s[i].runs || i >= at || at >= n)
        return -1;
    bool scope = in_scope_after(s, i, at);
    for (int v = 0; v < PAM_STACK_NVALUES; v++) {
        int a = s[i].ctl.act[v];
        if (a == PAM_ACT_DONE && scope)
            return v;
        if (a > 0) {
            size_t end = jump_end(s, n, i, a);
            if (end < n && at <= end)
                return v;
        }
    }
    return -1;
}

int pam_step_forgets(const struct pam_step *s, size_t n, size_t j, size_t at)
{
    if (!s[j].runs || j <= at || j >= n)
        return -1;
    /* "reset" restores the state from when s[j]'s substack was entered (the start, at level 0).
     * That state predates the module's failure unless s[j] is in a substack entered after it. */
    int level = s[j].level;
    if (level > s[at].level)
        return -1;
    for (size_t k = at + 1; k <= j; k++)
        if (s[k].level < level)
            return -1;
    for (int v = 0; v < PAM_STACK_NVALUES; v++)
        if (s[j].ctl.act[v] == PAM_ACT_RESET)
            return v;
    return -1;
}
