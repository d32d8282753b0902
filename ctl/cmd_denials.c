/* sandboxctl denials [USER] [--since MINUTES] [--log FILE]: recent denials per account from
 * proxyd's decision log (DESIGN.md §5.5), and the Allow= lines that would permit them.
 *
 * Only policy denials get a suggestion.  Denials no Allow= line can lift are shown with the reason
 * why: a name that resolves inside (address classes are never reached through a name rule), a
 * metadata address, inference without models, an account that is not sandboxed. */
#include <arpa/inet.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "common/config.h"
#include "ctl/ctl.h"

#define TAIL_BYTES (8u << 20)     /* only the end of a large log is read */
#define MAX_ITEMS 4096

struct item {
    char *account, *profile, *host, *reason, *mode, *last, *binary;
    unsigned port;
    unsigned count;
    bool would;                        /* Mode=report: let through, logged as would_deny */
};

static int usage(void)
{
    fprintf(stderr, "usage: sandboxctl [-c DIR] denials [USER] [--since MINUTES] [--log FILE]\n");
    return 2;
}

static const char *jstr(struct json_object *o, const char *k)
{
    struct json_object *v;
    if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static long jint(struct json_object *o, const char *k)
{
    struct json_object *v;
    if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_int))
        return -1;
    return (long)json_object_get_int64(v);
}

/* "2026-11-28T15:20:04.123Z" -> epoch seconds (UTC), or -1 */
static time_t parse_time(const char *s)
{
    struct tm tm = { 0 };
    if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))
        return -1;
    return timegm(&tm);
}

static bool same(const char *a, const char *b)
{
    return (a && b) ? strcmp(a, b) == 0 : a == b;
}

/* What an admin could add, or why nothing helps.  Writes the Allow= line (or "") to out. */
/* The log's strings come from users: a program's path, a host name.  json-c gives back whatever
 * the JSON escapes stood for, control characters included, and these are printed on root's
 * terminal.  So every byte outside printable ASCII is shown as \xNN (and a backslash as \\). */
static const char *shown(const char *s, char *buf, size_t n)
{
    if (!s)
        return "-";
    size_t o = 0;
    for (; *s && o + 5 < n; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch >= 0x20 && ch < 0x7f && ch != '\\')
            buf[o++] = (char)ch;
        else
            o += (size_t)snprintf(buf + o, n - o, ch == '\\' ? "\\\\" : "\\x%02x", ch);
    }
    buf[o] = '\0';
    return buf;
}

/* Can s go into a suggested rule as it is?  Printable ASCII without spaces: anything else would
 * be a different rule (or several lines) once pasted into a profile. */
static bool rule_safe(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

static const char *advice(const struct item *it, char *out, size_t outlen)
{
    out[0] = '\0';
    const char *r = it->reason ? it->reason : "";
    if (strcmp(r, "not_sandboxed") == 0 || strcmp(r, "client_not_found") == 0)
        return "the account is not sandboxed: proxyd serves sandboxed accounts only";
    if (strncmp(r, "address_class_", 14) == 0) {
        /* The classes an IP/CIDR rule can open (common/policy.c ps_addr_permitted); the others
         * (metadata, unspecified, multicast, synthetic, reserved) no rule ever opens. */
        const char *cls = r + 14;
        bool openable = strcmp(cls, "loopback") == 0 || strcmp(cls, "link_local") == 0 ||
                        strcmp(cls, "private") == 0 || strcmp(cls, "cgnat") == 0;
        if (!openable)
            return "addresses of this class are never allowed, whatever the rules";
        unsigned char buf[16];
        bool literal = it->host && (inet_pton(AF_INET, it->host, buf) == 1 ||
                                    inet_pton(AF_INET6, it->host, buf) == 1);
        if (!literal)
            return "the name resolves to an internal address; name rules never reach those "
                   "(an IP/CIDR Allow= for the address could)";
    }
    if (strcmp(r, "inference_not_permitted") == 0)
        return "inference.local needs [Inference] Models= in the profile";
    if (strcmp(r, "too_many_connections") == 0)
        return "the per-account connection limit was reached (sandbox-proxyd -m)";
    if (strcmp(r, "no_original_destination") == 0 || !it->host || !*it->host)
        return "not a policy decision";
    if (strcmp(r, "no_matching_rule") != 0 && strcmp(r, "deny_rule") != 0 &&
        strncmp(r, "address_class_", 14) != 0 && strncmp(r, "binary_", 7) != 0)
        return "malformed or refused request, not a policy decision";
    bool v6 = strchr(it->host, ':') != NULL;
    /* binary= denials: the rule must name the program that connected */
    bool bin = strncmp(r, "binary_", 7) == 0 && it->binary && *it->binary;
    if (!rule_safe(it->host) || (bin && !rule_safe(it->binary)))
        return "the host or the program's path holds spaces or control characters: no rule "
               "suggested (check what connected)";
    if (it->port)
        snprintf(out, outlen, "Allow=%s%s%s:%u%s%s", v6 ? "[" : "", it->host, v6 ? "]" : "", it->port,
                 bin ? " binary=" : "", bin ? it->binary : "");
    else
        snprintf(out, outlen, "Allow=%s:443", it->host);   /* a DNS denial: the port is not known */
    if (strcmp(r, "deny_rule") == 0)
        return "a Deny= rule matched: deny rules win, remove it first";
    return NULL;
}

int cmd_denials(const struct ctl_opts *o, int argc, char **argv)
{
    const char *user = NULL, *logpath = NULL;
    long since_min = 24 * 60;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--since") == 0 && i + 1 < argc) {
            char *end;
            since_min = strtol(argv[++i], &end, 10);
            if (*end || since_min <= 0)
                return usage();
        } else if (strcmp(argv[i], "--log") == 0 && i + 1 < argc) {
            logpath = argv[++i];
        } else if (argv[i][0] == '-' || user) {
            return usage();
        } else {
            user = argv[i];
        }
    }
    struct ps_config *cfg = NULL;
    if (!logpath) {
        cfg = ctl_load_config(o);
        if (!cfg)
            return 1;
        logpath = cfg->global.decision_log;
    }
    FILE *f = fopen(logpath, "r");
    if (!f) {
        fprintf(stderr, "sandboxctl: %s: %m\n", logpath);
        ps_config_free(cfg);
        return 1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && st.st_size > (off_t)TAIL_BYTES) {
        fseeko(f, st.st_size - (off_t)TAIL_BYTES, SEEK_SET);
        int ch;
        while ((ch = fgetc(f)) != EOF && ch != '\n')   /* skip the partial first line */
            ;
    }
    time_t cutoff = time(NULL) - since_min * 60;
    struct item *items = calloc(MAX_ITEMS, sizeof(*items));
    size_t n = 0;
    unsigned long long not_logged = 0;     /* over proxyd's denial rate limit (declog_limit.c) */
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while (items && (len = getline(&line, &cap, f)) > 0) {
        struct json_object *j = json_tokener_parse(line);
        if (!j)
            continue;
        const char *dec = jstr(j, "decision");
        const char *acct = jstr(j, "account");
        if (dec && strcmp(dec, "suppressed") == 0 && (!user || (acct && strcmp(user, acct) == 0)) &&
            parse_time(jstr(j, "time")) >= cutoff) {
            not_logged += jint(j, "count") > 0 ? (unsigned long long)jint(j, "count") : 0;
            json_object_put(j);
            continue;
        }
        if (!dec || (strcmp(dec, "deny") != 0 && strcmp(dec, "would_deny") != 0) || !acct ||
            (user && strcmp(user, acct) != 0) || parse_time(jstr(j, "time")) < cutoff) {
            json_object_put(j);
            continue;
        }
        const char *host = jstr(j, "host"), *reason = jstr(j, "reason"), *prof = jstr(j, "profile");
        long port = jint(j, "port");
        bool would = strcmp(dec, "would_deny") == 0;
        const char *binary = jstr(j, "binary");
        size_t k;
        for (k = 0; k < n; k++)
            if (same(items[k].account, acct) && same(items[k].host, host) &&
                items[k].port == (unsigned)(port < 0 ? 0 : port) && same(items[k].reason, reason) &&
                items[k].would == would && same(items[k].binary, binary))
                break;
        if (k == n && n < MAX_ITEMS) {
            items[n].account = strdup(acct);
            items[n].profile = prof ? strdup(prof) : NULL;
            items[n].host = host ? strdup(host) : NULL;
            items[n].reason = reason ? strdup(reason) : NULL;
            items[n].port = (unsigned)(port < 0 ? 0 : port);
            items[n].would = would;
            items[n].binary = binary ? strdup(binary) : NULL;
            n++;
        }
        if (k < n) {
            items[k].count++;
            free(items[k].last);
            items[k].last = strdup(jstr(j, "time") ? jstr(j, "time") : "");
            free(items[k].mode);
            items[k].mode = jstr(j, "mode") ? strdup(jstr(j, "mode")) : NULL;
        }
        json_object_put(j);
    }
    free(line);
    fclose(f);
    if (n == 0 && not_logged == 0)
        printf("no denials in the last %ld minutes%s%s\n", since_min, user ? " for " : "", user ? user : "");
    /* per account, in first-seen order */
    for (size_t a = 0; a < n; a++) {
        bool first = true;
        for (size_t b = 0; b < a; b++)
            if (same(items[b].account, items[a].account))
                first = false;
        if (!first)
            continue;
        char ba[400], bp[400];
        printf("%s (profile %s):\n", shown(items[a].account, ba, sizeof ba),
               items[a].profile ? shown(items[a].profile, bp, sizeof bp) : "none");
        for (size_t k = a; k < n; k++) {
            if (!same(items[k].account, items[a].account))
                continue;
            char allow[600], b1[1200], b2[400], b3[200], b4[200];
            allow[0] = '\0';
            const char *why = advice(&items[k], allow, sizeof allow);
            printf("  %4ux %s:%u  %s%s  (%s, last %s)\n", items[k].count,
                   shown(items[k].host, b1, sizeof b1), items[k].port,
                   shown(items[k].reason, b2, sizeof b2),
                   items[k].would ? " [Mode=report: let through, would be denied]" : "",
                   shown(items[k].mode, b3, sizeof b3), shown(items[k].last, b4, sizeof b4));
            if (items[k].binary && !rule_safe(items[k].binary))
                printf("        # program: %s\n", shown(items[k].binary, b1, sizeof b1));
            if (allow[0] && items[k].profile)
                printf("        %s    # [Network] of profiles/%s.conf\n", allow,
                       shown(items[k].profile, b2, sizeof b2));
            else if (allow[0])
                printf("        %s\n", allow);
            if (why)
                printf("        # %s\n", why);
        }
    }
    if (not_logged)
        printf("%llu more denials were not logged (proxyd's rate limit for denial records; see "
               "sandbox-proxyd(8)).\n", not_logged);
    for (size_t k = 0; k < n; k++) {
        free(items[k].account); free(items[k].profile); free(items[k].host);
        free(items[k].reason); free(items[k].mode); free(items[k].last); free(items[k].binary);
    }
    free(items);
    ps_config_free(cfg);
    return 0;
}
