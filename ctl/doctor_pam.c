/* sandboxctl doctor: PAM session stacks.  A service that opens sessions must run pam_sandbox.so
 * (required, not skippable), and pam_limits after it must not raise what it set (DESIGN.md §9.4).
 * Whether a control can skip the module or ignore its failure is libpam's business: ctl/pam_stack.c
 * models it, on a stack flattened here the way libpam builds it. */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "common/util.h"
#include "ctl/doctor_int.h"
#include "ctl/pam_stack.h"

#define PAM_DIR "/etc/pam.d"
#define MAX_DEPTH 8               /* include nesting; Debian uses 1 */
#define MAX_ENTRIES 256
#ifndef PS_PAM_MODDIR             /* set by packaging/build.mk from pkg-config pam */
#define PS_PAM_MODDIR "/lib/x86_64-linux-gnu/security"
#endif

/* Services through which an account gets a session: always checked when present.  Every other
 * file of /etc/pam.d is checked too when its stack has session entries (a local service, a display
 * manager), except the ones below. */
static const char *const session_services[] = {
    "common-session", "common-session-noninteractive", "sshd", "login", "su", "su-l",
    "sudo", "sudo-i", "cron", "atd", "systemd-user",
};
/* Not services, or not a way in: the other common-* files hold no sessions; runuser is root-only
 * (root is never confined and could do anything runuser does). */
static bool skipped_service(const char *name)
{
    size_t l = strlen(name);
    return name[0] == '.' || strncmp(name, "common-", 7) == 0 || strcmp(name, "runuser") == 0 ||
           strcmp(name, "runuser-l") == 0 || (l && name[l - 1] == '~') || strstr(name, ".dpkg-") ||
           strstr(name, ".ucf-");
}

static bool listed_service(const char *name)
{
    for (size_t i = 0; i < sizeof session_services / sizeof session_services[0]; i++)
        if (strcmp(session_services[i], name) == 0)
            return true;
    return false;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The listed services first, then the other files of /etc/pam.d in name order. */
static char **services_to_check(const struct doctor *d, size_t *n)
{
    char **v = NULL;
    size_t cap = 0;
    *n = 0;
    for (size_t i = 0; i < sizeof session_services / sizeof session_services[0]; i++)
        *(char **)ps_vec_push(&v, n, &cap, sizeof *v) = ps_xstrdup(session_services[i]);
    size_t listed = *n;
    char full[4096];
    DIR *dir = opendir(doc_path(d, PAM_DIR, full, sizeof full));
    if (dir) {
        struct dirent *e;
        while ((e = readdir(dir)) != NULL)
            if (!skipped_service(e->d_name) && !listed_service(e->d_name))
                *(char **)ps_vec_push(&v, n, &cap, sizeof *v) = ps_xstrdup(e->d_name);
        closedir(dir);
    }
    if (*n > listed)
        qsort(v + listed, *n - listed, sizeof *v, cmp_name);
    return v;
}

struct pam_entry {
    char file[256];               /* as shown: /etc/pam.d/NAME */
    unsigned line;
    bool dash;                    /* "-session": libpam does not log that the module is missing */
    char control[128];
    char module[128];             /* base name, e.g. pam_limits.so; "" for a substack's own line
                                   * and for an include that libpam cannot read */
    char path[256];               /* as written: a name or an absolute path */
    char args[512];
};

/* The session handlers of one service in libpam's order: v[i] says where each comes from,
 * step[i] how libpam runs it. */
struct stack {
    struct pam_entry v[MAX_ENTRIES];
    struct pam_step step[MAX_ENTRIES];
    size_t n;
};

static void copy(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src);
}

/* Next token of *p, split as libpam's _pam_StrTok does: on blanks, except that a token opening
 * with '[' runs to the first ']' not preceded by a backslash, blanks included, and is returned
 * without its brackets (*bracketed set, when asked); the character after that ']' starts the next
 * token even when it is not a blank ("[default=ignore]pam_x.so" is a control and a module). */
static char *next_token_b(char **p, bool *bracketed)
{
    char *s = *p;
    if (bracketed)
        *bracketed = false;
    while (*s == ' ' || *s == '\t' || *s == '\n')
        s++;
    if (!*s)
        return NULL;
    if (*s == '[') {
        char *start = s + 1, *end = start;
        while (*end && !(*end == ']' && end[-1] != '\\'))
            end++;
        *p = *end ? end + 1 : end;       /* past the ']', whatever follows it */
        /* "\]" inside stands for "]" (libpam drops the backslash) */
        char *w = start;
        for (char *r = start; r < end; r++)
            if (!(*r == '\\' && r + 1 < end && r[1] == ']'))
                *w++ = *r;
        *w = '\0';
        if (bracketed)
            *bracketed = true;
        return start;
    }
    char *start = s, *end = s;
    while (*end && *end != ' ' && *end != '\t' && *end != '\n')
        end++;
    if (*end)
        *end++ = '\0';
    *p = end;
    return start;
}

static char *next_token(char **p)
{
    return next_token_b(p, NULL);
}

/* typed: the file was reached through a session include or substack, which libpam reads for the
 * session type only (see add_line). */
static bool expand(const struct doctor *d, const char *path, int depth, int level, bool typed,
                   struct stack *st);

static bool include_file(const struct doctor *d, const char *target, int depth, int level,
                         bool typed, struct stack *st)
{
    char path[512];
    if (target[0] == '/')
        copy(path, sizeof path, target);
    else
        snprintf(path, sizeof path, PAM_DIR "/%s", target);
    return expand(d, path, depth + 1, level, typed, st);
}

/* A new handler at the end of st (NULL when st is full: later lines are not followed). */
static struct pam_entry *push(struct stack *st, const char *file, unsigned line, int level)
{
    if (st->n == MAX_ENTRIES)
        return NULL;
    struct pam_entry *e = &st->v[st->n];
    memset(e, 0, sizeof *e);
    copy(e->file, sizeof e->file, file);
    e->line = line;
    st->step[st->n] = (struct pam_step){ .level = level, .runs = true };
    st->n++;
    return e;
}

/* "session include|substack FILE".  libpam counts a substack's own line as a module at this level
 * (a jump passes over the whole substack as one) and runs its lines one level deeper; a file it
 * cannot read becomes a module that always fails, which a jump counts too. */
static void add_include(const struct doctor *d, const char *path, unsigned at, const char *control,
                        const char *target, bool substack, int depth, int level, struct stack *st)
{
    if (substack) {
        struct pam_entry *e = push(st, path, at, level);
        if (!e)
            return;
        copy(e->control, sizeof e->control, control);
        st->step[st->n - 1].runs = false;
    }
    if (include_file(d, target, depth, level + substack, true, st))
        return;
    struct pam_entry *e = push(st, path, at, level);
    if (!e)
        return;
    copy(e->control, sizeof e->control, control);
    for (int v = 0; v < PAM_STACK_NVALUES; v++)
        st->step[st->n - 1].ctl.act[v] = PAM_ACT_BAD;
}

/* One logical line of a PAM file (comments removed): its session handlers, appended to st. */
static void add_line(const struct doctor *d, const char *path, unsigned at, char *line, int depth,
                     int level, bool typed, struct stack *st)
{
    char *q = line, *type = next_token(&q);
    if (!type)
        return;
    if (strcmp(type, "@include") == 0) {
        /* Debian's: a file it cannot read aborts pam_start, every session fails */
        char *t = next_token(&q);
        if (t)
            include_file(d, t, depth, level, typed, st);
        return;
    }
    bool dash = type[0] == '-';
    /* A type libpam does not know is installed, in a file read for one type (an include or
     * substack of a session line), as a handler of that type that always fails with
     * PAM_PERM_DENIED: it runs, and counts for a jump.  In a service's own file (read for every
     * type) it goes to the auth stack. */
    static const char *const known[] = { "auth", "account", "password", "session" };
    bool legal = false;
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        legal |= strcasecmp(type + dash, known[i]) == 0;
    bool must_fail = !legal && typed;
    if (!must_fail && strcasecmp(type + dash, "session") != 0)   /* libpam ignores the type's case */
        return;
    bool bracketed;
    char *control = next_token_b(&q, &bracketed), *module = next_token(&q);
    if (!control)
        return;
    struct pam_control ctl;
    /* As libpam: the field without its brackets, keyword or list ("[required]" is "required"). */
    enum pam_control_kind kind = pam_control_parse(control, &ctl);
    char shown[sizeof st->v[0].control];
    snprintf(shown, sizeof shown, bracketed ? "[%s]" : "%s", control);
    control = shown;
    if (kind != PAM_CONTROL_MODULE) {
        if (!must_fail && module)
            add_include(d, path, at, control, module, kind == PAM_CONTROL_SUBSTACK, depth, level, st);
        return;
    }
    /* No module named: libpam installs the line as a handler that always fails, with its actions
     * ("session [default=1]" alone jumps over the next module). */
    bool no_module = !module;
    if (no_module) {
        must_fail = true;
        module = (char *)"";
    }
    if (must_fail)                       /* only PAM_PERM_DENIED can come of it */
        for (int v = 0; v < PAM_STACK_NVALUES; v++)
            ctl.act[v] = ctl.act[PAM_PERM_DENIED];
    struct pam_entry *e = push(st, path, at, level);
    if (!e)
        return;
    st->step[st->n - 1].ctl = ctl;
    e->dash = dash;
    copy(e->control, sizeof e->control, control);
    const char *base = strrchr(module, '/');
    copy(e->module, sizeof e->module, base ? base + 1 : module);
    if (no_module)
        snprintf(e->module, sizeof e->module, "(no module named: always fails)");
    else if (must_fail)                  /* not the module, nor pam_limits, whatever it names */
        snprintf(e->module, sizeof e->module, "%.60s (type \"%.20s\": always fails)",
                 base ? base + 1 : module, type);
    copy(e->path, sizeof e->path, module);
    while (*q == ' ' || *q == '\t')
        q++;
    copy(e->args, sizeof e->args, q);
}

/* Append the session handlers of file path (and what it includes) to st, in stack order, at
 * substack level `level`.  False if the file cannot be read. */
static bool expand(const struct doctor *d, const char *path, int depth, int level, bool typed,
                   struct stack *st)
{
    if (depth > MAX_DEPTH)
        return true;              /* not followed further; not a missing file */
    char *buf = doc_read(d, path);
    if (!buf)
        return false;
    unsigned lineno = 0;
    char *p = buf;
    while (*p) {
        char *line = p, *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        p = nl ? nl + 1 : p + strlen(p);
        unsigned at = ++lineno;
        /* "\\" at the end of a line continues it, as in libpam; findings name the first line. */
        size_t l = strlen(line);
        while (l && line[l - 1] == '\\' && nl) {
            line[l - 1] = ' ';
            *nl = ' ';
            nl = strchr(p, '\n');
            if (nl)
                *nl = '\0';
            p = nl ? nl + 1 : p + strlen(p);
            lineno++;
            l = strlen(line);
        }
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        add_line(d, path, at, line, depth, level, typed, st);
    }
    free(buf);
    return true;
}

/* "conf=FILE" among pam_limits' arguments, else its default. */
static void limits_conf(const struct pam_entry *e, char *out, size_t len)
{
    char args[sizeof e->args];
    copy(args, sizeof args, e->args);
    char *p = args, *t;
    copy(out, len, "/etc/security/limits.conf");
    while ((t = next_token(&p)) != NULL)
        if (strncmp(t, "conf=", 5) == 0)
            copy(out, len, t + 5);
}

/* Findings about one line of an included file (common-session) would repeat for every service
 * that includes it: report each (kind, file, line) once. */
struct once {
    char key[64][300];
    size_t n;
};

static bool first_time(struct once *o, char kind, const struct pam_entry *e)
{
    char key[sizeof o->key[0]];
    snprintf(key, sizeof key, "%c:%u:%.250s", kind, e->line, e->file);
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->key[i], key) == 0)
            return false;
    if (o->n < sizeof o->key / sizeof o->key[0])
        copy(o->key[o->n++], sizeof o->key[0], key);
    return true;
}

/* Where libpam loads the module from: an absolute path as written, else its module directory. */
static void module_path(const struct pam_entry *e, char *out, size_t len)
{
    if (e->path[0] == '/')
        copy(out, len, e->path);
    else
        snprintf(out, len, "%s/%s", PS_PAM_MODDIR, e->path);
}

/* The module's own control must refuse the session when it fails, no earlier line may skip it, and
 * no later one may make the stack forget its failure (ctl/pam_stack.c; what each action does:
 * pam.conf(5)). */
static void check_controls(struct doctor *d, const struct stack *st, size_t at, const char *file,
                           struct once *once)
{
    const struct pam_entry *m = &st->v[at];
    char why[64];
    int v = pam_failure_passes(&st->step[at].ctl);
    if (v >= 0 && first_time(once, 'c', m))
        doc_finding(d, m->file, m->line, "pam_sandbox.so is \"%s\": a failure to confine does not "
                    "refuse the session (%s %s: the other modules decide; %s); fix: make it "
                    "\"required\"", m->control, pam_control_explain(&st->step[at].ctl, v, why, sizeof why),
                    v == PAM_SYSTEM_ERR ? "when it cannot confine" : "when libpam cannot load it", file);
    for (size_t i = 0; i < at; i++) {
        const struct pam_entry *e = &st->v[i];
        if ((v = pam_step_skips(st->step, st->n, i, at)) < 0 || !first_time(once, 's', e))
            continue;
        const struct pam_control *c = &st->step[i].ctl;
        doc_finding(d, e->file, e->line, "\"%s\" %s before pam_sandbox.so can skip it: %s %s (%s); "
                    "fix: put pam_sandbox.so above it, or make no jump of it reach the module",
                    e->control, e->module, pam_control_explain(c, v, why, sizeof why),
                    c->act[v] == PAM_ACT_DONE ? "ends the stack before the module runs"
                                              : "jumps over the module", file);
    }
    for (size_t j = at + 1; j < st->n; j++) {
        const struct pam_entry *e = &st->v[j];
        if ((v = pam_step_forgets(st->step, st->n, j, at)) >= 0 && first_time(once, 'r', e))
            doc_finding(d, e->file, e->line, "\"%s\" %s after pam_sandbox.so can undo its failure: %s "
                        "forgets that the module failed, and the session can open unconfined (%s); fix: "
                        "no \"reset\" after the module", e->control, e->module,
                        pam_control_explain(&st->step[j].ctl, v, why, sizeof why), file);
    }
}

void doc_check_pam(struct doctor *d)
{
    struct stack *st = ps_xcalloc(1, sizeof *st);
    struct once *once = ps_xcalloc(1, sizeof *once);
    char checked[8][512];
    size_t n_checked = 0;
    size_t n_services;
    char **services = services_to_check(d, &n_services);
    for (size_t s = 0; s < n_services; s++) {
        char file[512], full[4096];
        snprintf(file, sizeof file, PAM_DIR "/%s", services[s]);
        struct stat fst;
        if (stat(doc_path(d, file, full, sizeof full), &fst) != 0 || !S_ISREG(fst.st_mode))
            continue;             /* not installed here: nothing opens sessions through it */
        st->n = 0;
        expand(d, file, 0, 0, false, st);
        size_t modules = 0;
        for (size_t i = 0; i < st->n; i++)
            modules += st->v[i].module[0] != '\0';
        if (modules == 0 && !listed_service(services[s]))
            continue;             /* authenticates only (chfn, passwd, ...): no session */
        size_t at = st->n;
        for (size_t i = 0; i < st->n && at == st->n; i++)
            if (strcmp(st->v[i].module, "pam_sandbox.so") == 0)
                at = i;
        if (at == st->n) {
            doc_finding(d, file, 0, "no pam_sandbox.so in its session stack (includes followed), so "
                        "sessions opened through %s are not confined; fix: pam-auth-update --enable "
                        "pam_sandbox, or add \"session required pam_sandbox.so\"",
                        services[s]);
            continue;
        }
        const struct pam_entry *m = &st->v[at];
        char mod[600];
        module_path(m, mod, sizeof mod);
        struct stat sb;
        if (stat(doc_path(d, mod, full, sizeof full), &sb) != 0 && first_time(once, 'm', m))
            doc_finding(d, m->file, m->line, "%s does not exist: %s; fix: make install (or correct "
                        "the path)", mod, m->dash ? "every session through this stack fails, and \"-session\" "
                        "keeps libpam from logging why" : "every session through this stack fails");
        if (m->dash && first_time(once, 'd', m))
            doc_finding(d, m->file, m->line, "\"-session\" hides pam_sandbox.so going missing: "
                        "sessions then fail with no reason logged (%s); fix: drop the leading \"-\"", file);
        check_controls(d, st, at, file, once);
        for (size_t i = at + 1; i < st->n; i++) {
            if (strcmp(st->v[i].module, "pam_limits.so") != 0)
                continue;
            char conf[512];
            limits_conf(&st->v[i], conf, sizeof conf);
            bool seen = false;
            for (size_t k = 0; k < n_checked; k++)
                seen |= strcmp(checked[k], conf) == 0;
            if (seen)
                continue;         /* one report per limits file, naming the first stack */
            if (n_checked < sizeof checked / sizeof checked[0])
                copy(checked[n_checked++], sizeof checked[0], conf);
            doc_check_limits(d, conf, file);
        }
    }
    for (size_t s = 0; s < n_services; s++)
        free(services[s]);
    free(services);
    free(once);
    free(st);
}
