/* A ceiling on denial records per account (see core.h).  Denials are what an account can make
 * proxyd write as fast as it can send: a refused DNS query costs it one datagram and the log a
 * 300-byte line, twice (syslog and DecisionLog).  Allows and close records are never limited: they
 * cost a connection each, which the per-account cap bounds.  Nothing is dropped silently: every
 * 10 s, each account over its ceiling gets one record saying how many denials were not written. */
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include "proxyd/core.h"
#include "proxyd/uid_quota.h"

#define PD_DENY_LOG_BURST 1000u         /* then 100 a second */
#define PD_DENY_LOG_WINDOW_MS 10000u
#define REPORT_EVERY_MS 10000u
#define TRACKED 64u                     /* accounts with a pending count; the rest share one line */

struct suppressed {
    bool used;
    struct pd_client who;               /* uid, user and mode for the report (no conf reference) */
    unsigned long long count;
};

static struct uid_quota *quota;
static struct suppressed tab[TRACKED];
static unsigned long long others;       /* accounts beyond TRACKED */
static bool pending;                    /* something counted and not reported yet */
static struct pd_timer *report_timer;   /* REPORT_EVERY_MS after the first of it */

static void on_report(struct pd_loop *l, void *arg)
{
    (void)l;
    (void)arg;
    report_timer = NULL;
    pd_declog_report_suppressed();
}

bool pd_declog_admit(const struct pd_log_entry *e)
{
    if (!e->decision || strcmp(e->decision, "deny") != 0)
        return true;
    if (!quota)
        quota = uid_quota_new(PD_DENY_LOG_BURST, PD_DENY_LOG_WINDOW_MS);
    uid_t uid = e->who ? e->who->uid : (uid_t)-1;
    uint64_t now = pd_now_ms();
    if (!quota || uid_quota_take(quota, uid, now))
        return true;
    if (!pending) {
        pending = true;
        if (pd && pd->loop && !report_timer)
            report_timer = pd_timer_add(pd->loop, REPORT_EVERY_MS, on_report, NULL);
    }
    for (unsigned i = 0; i < TRACKED; i++)
        if (tab[i].used && tab[i].who.uid == uid) {
            tab[i].count++;
            return false;
        }
    for (unsigned i = 0; i < TRACKED; i++)
        if (!tab[i].used) {
            tab[i].used = true;
            memset(&tab[i].who, 0, sizeof tab[i].who);
            if (e->who) {
                tab[i].who.uid = e->who->uid;
                tab[i].who.mode = e->who->mode;
                snprintf(tab[i].who.user, sizeof tab[i].who.user, "%s", e->who->user);
            } else {
                tab[i].who.uid = (uid_t)-1;
            }
            tab[i].count = 1;
            return false;
        }
    others++;
    return false;
}

void pd_declog_report_suppressed(void)
{
    if (!pending)
        return;
    pending = false;
    for (unsigned i = 0; i < TRACKED; i++) {
        if (!tab[i].used)
            continue;
        char extra[64];
        snprintf(extra, sizeof extra, "\"count\":%llu", tab[i].count);
        struct pd_log_entry e = {
            .who = &tab[i].who, .decision = "suppressed", .reason = "deny_rate_limit",
            .bytes_up = -1, .bytes_down = -1, .duration_ms = -1, .extra_json = extra,
        };
        tab[i].used = false;
        pd_log_decision(&e);
    }
    if (others) {
        syslog(LOG_WARNING, "decision log: %llu denial records of more than %u accounts over the "
               "rate limit were not written", others, TRACKED);
        others = 0;
    }
}
