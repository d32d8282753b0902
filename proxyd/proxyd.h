/* Shared core of sandbox-proxyd: the event loop, the daemon state, client identity and the
 * decision log.  Owned by the proxyd core (loop.c, main.c, ...); the DNS (dns_*.c, synth.c,
 * resolver.c) and inference (inference_*.c) parts build on exactly this interface. */
#ifndef PD_PROXYD_H
#define PD_PROXYD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include "common/config.h"
#include "common/policy.h"

/* ---- event loop (epoll, level-triggered; pd->loop decides, relay loops (relay.c) only relay) ---- */
struct pd_loop;
typedef void (*pd_io_cb)(struct pd_loop *l, int fd, uint32_t events, void *arg);
typedef void (*pd_timer_cb)(struct pd_loop *l, void *arg);
struct pd_timer;                               /* opaque */

struct pd_loop *pd_loop_new(void);
void pd_loop_free(struct pd_loop *l);
int  pd_loop_add(struct pd_loop *l, int fd, uint32_t events, pd_io_cb cb, void *arg); /* EPOLLIN|... */
int  pd_loop_mod(struct pd_loop *l, int fd, uint32_t events);
void pd_loop_del(struct pd_loop *l, int fd);  /* before close(fd) */
void pd_loop_close(struct pd_loop *l, int fd);  /* forget and close(fd) in one (no EPOLL_CTL_DEL) */
/* cb runs after each batch of events and timers, before the loop sleeps again (log batching). */
void pd_loop_set_idle(struct pd_loop *l, void (*cb)(void));
/* One-shot timer; returns a handle valid until it fires or is cancelled. */
struct pd_timer *pd_timer_add(struct pd_loop *l, uint64_t ms, pd_timer_cb cb, void *arg);
void pd_timer_cancel(struct pd_loop *l, struct pd_timer *t);
uint64_t pd_now_ms(void);                     /* CLOCK_MONOTONIC */
int  pd_loop_run(struct pd_loop *l);          /* until pd_loop_stop */
void pd_loop_stop(struct pd_loop *l);

/* ---- configuration snapshot, reference counted so that SIGHUP can swap it while connections
 * that started under the old one finish under it ---- */
struct pd_conf {
    struct ps_config *cfg;
    unsigned refs;
};
struct pd_conf *pd_conf_ref(struct pd_conf *c);
void pd_conf_unref(struct pd_conf *c);

/* ---- who is behind a connection (DESIGN.md §5.2) ---- */
enum pd_mode { PD_MODE_EXPLICIT, PD_MODE_TRANSPARENT, PD_MODE_DNS, PD_MODE_INFERENCE };

struct pd_client {
    struct pd_conf *conf;                 /* a reference held by whoever holds this struct */
    uid_t uid;
    char user[64];
    const struct ps_profile *profile;     /* points into conf->cfg; NULL = not sandboxed */
    struct sockaddr_storage peer;         /* the client's address */
    struct sockaddr_storage orig_dst;     /* transparent: SO_ORIGINAL_DST; explicit: the listener */
    enum pd_mode mode;
    bool counted;                         /* holds a slot of the per-account cap (ident.c): the
                                           * holder of this struct releases it */
};

/* Give back a slot of the per-account connection cap (ident.c; see pd_client.counted). */
void pd_account_release(uid_t uid);

/* ---- the decision log (DESIGN.md §5.5): one JSON line per decision, to syslog and DecisionLog.
 * Never a secret, token or body. ---- */
struct pd_log_entry {
    const struct pd_client *who;
    const char *host;                     /* name or address as requested */
    uint16_t port;
    const char *address;                  /* the address connected to, or NULL */
    const char *decision;                 /* "allow", "deny", "would_deny", "close" */
    const char *reason;
    const char *rule;                     /* "FILE:LINE" or "default" */
    const char *binary;                   /* or NULL */
    int64_t bytes_up, bytes_down;         /* -1 when not a close record */
    int64_t duration_ms;                  /* -1 when not a close record */
    const char *extra_json;               /* already-encoded extra members ("\"model\":\"x\""), or NULL */
};
void pd_log_decision(const struct pd_log_entry *e);
/* The JSON string literal of s (or null) for extra_json: valid JSON however short outlen is. */
void pd_json_str(char *out, size_t outlen, const char *s);

/* ---- daemon state ---- */
struct synth;                              /* proxyd/synth.h: synthetic address <-> name */
struct resolver;                           /* proxyd/resolver.h: asynchronous upstream DNS */

struct proxyd {
    struct pd_loop *loop;
    struct pd_conf *conf;                  /* current snapshot */
    struct synth *synth;
    struct resolver *resolver;
    void *inference;                       /* inference state (CA, leaf cert, rate limits) */
};
extern struct proxyd *pd;                  /* the one daemon instance */

/* Mark a listening socket as proxyd's (PS_PROXY_SOCKET_MARK; accept.c); what: for the log.
 * -1 (logged) when it cannot be (no CAP_NET_ADMIN). */
int pd_mark_listener(int fd, const char *what);

/* ---- hand-off to inference (proxyd/inference.h implements it):
 * fd is a connected, non-blocking client socket.  In explicit mode the CONNECT request has been
 * consumed and "200 Connection established" sent; in transparent mode nothing has been read.  The
 * next bytes are the client's TLS ClientHello for inference.local.  Takes ownership of fd and of
 * the reference in *who (copy it). ---- */
void pd_inference_accept(int fd, const struct pd_client *who);

#endif
