/* [Limits] Limit*= (systemd's names and value syntax): "VALUE" sets soft=hard, "SOFT:HARD" both;
 * "infinity" where the kernel allows it.  Sizes take K/M/G, LimitCPU= seconds or a duration,
 * LimitRTTIME= microseconds or a duration, LimitNICE= a raw 0-40 or a nice value "+N"/"-N". */
#include <stdio.h>
#include <string.h>
#include "common/config_int.h"
#include "common/values.h"

enum limit_type { L_COUNT, L_SIZE, L_CPU, L_RTTIME, L_NICE, L_RTPRIO };

static const struct {
    const char *name;
    int resource;
    enum limit_type type;
} limits[] = {
    { "LimitCPU", RLIMIT_CPU, L_CPU },           { "LimitFSIZE", RLIMIT_FSIZE, L_SIZE },
    { "LimitDATA", RLIMIT_DATA, L_SIZE },        { "LimitSTACK", RLIMIT_STACK, L_SIZE },
    { "LimitCORE", RLIMIT_CORE, L_SIZE },        { "LimitRSS", RLIMIT_RSS, L_SIZE },
    { "LimitNOFILE", RLIMIT_NOFILE, L_COUNT },   { "LimitAS", RLIMIT_AS, L_SIZE },
    { "LimitNPROC", RLIMIT_NPROC, L_COUNT },     { "LimitMEMLOCK", RLIMIT_MEMLOCK, L_SIZE },
    { "LimitLOCKS", RLIMIT_LOCKS, L_COUNT },     { "LimitSIGPENDING", RLIMIT_SIGPENDING, L_COUNT },
    { "LimitMSGQUEUE", RLIMIT_MSGQUEUE, L_SIZE }, { "LimitNICE", RLIMIT_NICE, L_NICE },
    { "LimitRTPRIO", RLIMIT_RTPRIO, L_RTPRIO },  { "LimitRTTIME", RLIMIT_RTTIME, L_RTTIME },
};
#define N_LIMITS (sizeof limits / sizeof limits[0])

/* The kernel's ceiling for RLIMIT_NOFILE (fs.nr_open cannot exceed it); infinity would fail. */
#define NOFILE_MAX 1073741816ull

const char *ps_limit_name(int resource)
{
    for (size_t i = 0; i < N_LIMITS; i++)
        if (limits[i].resource == resource)
            return limits[i].name;
    return NULL;
}

int ps_limit_by_name(const char *name)
{
    for (size_t i = 0; i < N_LIMITS; i++)
        if (strcmp(limits[i].name, name) == 0)
            return limits[i].resource;
    return -1;
}

static int parse_one(const char *s, enum limit_type t, rlim_t *out, char *err, size_t errlen)
{
    uint64_t v;
    if (strcmp(s, "infinity") == 0) {
        if (t == L_NICE || t == L_RTPRIO) {
            snprintf(err, errlen, "'infinity' is not allowed here");
            return -1;
        }
        *out = RLIM_INFINITY;
        return 0;
    }
    switch (t) {
    case L_COUNT:
        if (ps_parse_uint(s, UINT64_MAX - 1, &v, err, errlen) < 0)
            return -1;
        break;
    case L_SIZE:
        if (ps_parse_size(s, &v, err, errlen) < 0)
            return -1;
        break;
    case L_CPU:
    case L_RTTIME:
        if (s[0] >= '0' && s[0] <= '9' && strspn(s, "0123456789") == strlen(s)) {
            if (ps_parse_uint(s, UINT64_MAX - 1, &v, err, errlen) < 0)
                return -1;
        } else {
            if (ps_parse_duration_ms(s, &v, err, errlen) < 0)
                return -1;
            if (t == L_CPU)
                v = (v + 999) / 1000;              /* seconds, rounded up as systemd does */
            else if (v > (UINT64_MAX - 1) / 1000) {
                snprintf(err, errlen, "'%s' is too large", s);
                return -1;
            } else
                v *= 1000;                         /* microseconds */
        }
        break;
    case L_NICE:
        if (s[0] == '+' || s[0] == '-') {
            /* nice value -20..19 -> rlimit 40..1 (rlim = 20 - nice) */
            if (ps_parse_uint(s + 1, 20, &v, err, errlen) < 0)
                return -1;
            long nice = s[0] == '-' ? -(long)v : (long)v;
            if (nice > 19) {
                snprintf(err, errlen, "nice value %s is out of range (-20..19)", s);
                return -1;
            }
            v = (uint64_t)(20 - nice);
        } else if (ps_parse_uint(s, 40, &v, err, errlen) < 0) {
            return -1;
        }
        break;
    case L_RTPRIO:
        if (ps_parse_uint(s, 99, &v, err, errlen) < 0)
            return -1;
        break;
    }
    if (v >= (uint64_t)RLIM_INFINITY) {
        snprintf(err, errlen, "'%s' is too large", s);
        return -1;
    }
    *out = (rlim_t)v;
    return 0;
}

int ps_key_limit(struct pctx *c, const struct ps_key *k, const char *val, unsigned line)
{
    size_t i;
    for (i = 0; i < N_LIMITS && strcmp(limits[i].name, k->name) != 0; i++)
        ;
    if (i == N_LIMITS) {
        ps_perr(c, line, "internal error: no limit %s", k->name);
        return -1;
    }
    char buf[PS_MAX_LINE + 1], err[256];
    snprintf(buf, sizeof buf, "%s", val);
    char *colon = strchr(buf, ':'), *hard_s = buf;
    if (colon) {
        *colon = 0;
        hard_s = colon + 1;
    }
    rlim_t soft, hard;
    if (!*buf) {
        ps_perr(c, line, "%s= needs a value (VALUE or SOFT:HARD)", k->name);
        return -1;
    }
    if (parse_one(buf, limits[i].type, &soft, err, sizeof err) < 0 ||
        parse_one(hard_s, limits[i].type, &hard, err, sizeof err) < 0) {
        ps_perr(c, line, "%s=%s: %s", k->name, val, err);
        return -1;
    }
    if (soft > hard) {
        ps_perr(c, line, "%s=%s: the soft limit is above the hard limit", k->name, val);
        return -1;
    }
    if (limits[i].resource == RLIMIT_NOFILE && hard != RLIM_INFINITY && hard > NOFILE_MAX) {
        ps_perr(c, line, "%s=%s: above the kernel's maximum (%llu)", k->name, val, NOFILE_MAX);
        return -1;
    }
    if (limits[i].resource == RLIMIT_NOFILE && hard == RLIM_INFINITY) {
        ps_perr(c, line, "%s=%s: the kernel cannot set an infinite file limit", k->name, val);
        return -1;
    }
    /* Invariant 3 of the design: a sandboxed account always has a finite NPROC hard limit. */
    if (limits[i].resource == RLIMIT_NPROC && hard == RLIM_INFINITY) {
        ps_perr(c, line, "%s=%s: the hard limit must be finite (it bounds fork bombs)", k->name,
                val);
        return -1;
    }
    if ((limits[i].resource == RLIMIT_NPROC || limits[i].resource == RLIMIT_NOFILE) && soft == 0) {
        ps_perr(c, line, "%s=%s: 0 would make every login fail", k->name, val);
        return -1;
    }
    struct ps_limit *l = &c->p->limits[limits[i].resource];
    l->set = true;
    l->soft = soft;
    l->hard = hard;
    l->origin = ps_origin_at(c, line);
    return 0;
}
