/* Internals of the proxyd core (main, listeners, connections, relays).  The DNS and inference
 * parts do not see this; they use proxyd.h only. */
#ifndef PD_CORE_H
#define PD_CORE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include "proxyd/proxyd.h"
#include "proxyd/http_parse.h"

#define PD_HEAD_TIMEOUT_MS 10000u     /* a request head must arrive within this (slow clients) */
#define PD_IDLE_TIMEOUT_MS 60000u     /* keep-alive wait for the next request */
#define PD_CONNECT_TIMEOUT_MS 10000u  /* per upstream address: then 504 */
#define PD_LINGER_MS 2000u            /* CS_DRAIN at most this long */
#define PD_MAX_CANDIDATES 8           /* resolved addresses tried in order */
#define PD_FWD_BUF 16384              /* plain-HTTP forwarding buffer, allocated lazily */
/* Read interest.  EPOLLRDHUP tells a tunnel that the peer's FIN is in, so a short read is its last
 * (tunnel.c), without another recv() to find the EOF. */
#define PD_EV_READ (EPOLLIN | EPOLLRDHUP)

extern unsigned pd_max_conns_per_account;     /* -m; 429 beyond it */

enum pd_conn_state {
    CS_READ_HEAD,          /* explicit: reading a request head */
    CS_RESOLVING,
    CS_CONNECTING,
    CS_PROXY_HANDSHAKE,    /* UpstreamProxy=: waiting for its answer to our CONNECT */
    CS_TUNNEL,             /* splice both ways */
    CS_FWD,                /* explicit absolute-form: request/response forwarding */
    CS_REPLY_CLOSE,        /* writing a final answer, then close */
    CS_DRAIN,              /* answer written and FIN sent: discarding input until the client's FIN */
};

/* An IPv4 or IPv6 socket address, without sockaddr_storage's padding (idle tunnels are many). */
typedef union {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
} pd_addr;

/* One direction of a tunnel: src -> pipe -> dst. */
struct pd_dir {
    int pipe[2];           /* created on first use */
    size_t inpipe;
    size_t pipe_size;      /* capacity, for the splice length */
    bool eof;              /* src reached EOF, or failed (then reset too) */
    bool reset;            /* src failed (a reset): not a FIN, and not to be passed on as one */
    bool shut;             /* dst shut down for writing */
    bool splice;           /* bulk seen: splice from now on */
};

struct pd_buf {
    char *p;               /* NULL until needed */
    size_t len, off, cap;
};

struct pd_conn {
    struct pd_loop *loop;              /* the loop its sockets and timer are on: pd->loop, or a
                                        * relay loop once the tunnel has moved (relay.c) */
    struct pd_conn *handoff_next;      /* in a relay inbox or the retired list (relay.c) */
    unsigned tunnel_events;            /* events relayed on pd->loop: busy tunnels move (relay.c) */
    int relay;                         /* index of the relay loop holding it, or -1 */
    uint64_t t_end;                    /* when a relay loop closed it (0: not yet) */
    int cfd, ufd;
    uint32_t cmask, umask;             /* current epoll masks (registration done once) */
    bool creg, ureg;
    bool cpark, upark;                 /* registered for reading, nothing wanted (conn.c) */
    bool io_failed;                    /* epoll refused a socket: aborted at the next timer */
    bool busy_kept;                    /* busy, and kept by pd->loop as its share (relay.c) */
    struct pd_client who;              /* holds a conf reference */
    enum pd_conn_state st;
    bool counted;                      /* counts against the per-account cap */
    bool id_ok;                        /* identity found */
    uint64_t inode;                    /* the client socket's inode (sock_diag) */
    void *binq;                        /* pending binary lookup */
    bool bin_done;                     /* binary lookup finished (binary[] valid or empty) */
    char *binary;                      /* executable owning the socket, or NULL */
    const char *id_err;                /* why not */

    struct pd_buf in;                  /* from the client, not yet consumed */
    struct pd_buf out;                 /* to the client */
    struct pd_buf uout;                /* to the upstream */
    struct pd_buf uin;                 /* from the upstream (FWD response) */

    /* the request being served */
    char host[PS_MAX_NAME + 1];
    uint16_t port;
    bool host_is_name;
    bool is_connect;
    bool keep_alive;                   /* explicit: serve another request after this one */
    char addr_str[64];                 /* address connected to */
    char rule[512];                    /* FILE:LINE of the deciding rule */
    const char *decision;              /* "allow" or "would_deny" */
    const char *reason;
    bool decision_logged;              /* the allow/would_deny line is out */
    pd_addr cands[PD_MAX_CANDIDATES];
    size_t n_cands, cand_i;
    bool via_proxy;                    /* this attempt goes through UpstreamProxy= */
    struct resolver_query *rq;
    struct pd_timer *timer;

    /* FWD (absolute-form) framing */
    char method[16];
    enum http_body_kind req_body, resp_body;
    int64_t req_left, resp_left;
    struct http_chunked req_ch, resp_ch;
    bool resp_head_done, resp_done;
    bool req_done;
    bool client_http10;                /* the client spoke HTTP/1.0: no chunked answer to it */
    bool dechunk;                      /* this response is chunked upstream, decoded for an HTTP/1.0 client */
    size_t head_scanned;               /* bytes of a head in progress already searched for a LF */
    size_t resp_scanned;               /* the same for the response head (forward.c) */

    struct pd_dir up, down;            /* client->upstream, upstream->client */
    int64_t bytes_up, bytes_down;
    uint64_t t_start;

    /* tunnel upkeep (tunnel.c, pd_tunnel_check) */
    bool up_keepalive;                 /* TCP keepalive set on ufd */
    int64_t bytes_at_check;            /* bytes delivered (tunnel.c) at the last check */
    uint64_t quiet_ms;                 /* half-closed and silent this long, in whole checks */
    const char *close_reason;          /* for the close record; NULL: "closed" */
};
/* Idle tunnels are many (bench/: RSS per idle tunnel).  Measured: at 2048 bytes an idle tunnel
 * cost 3.5 KiB instead of 2.6.  The likely reason: each connection's request is read into a 4 KiB
 * buffer freed once it is decided, two structs of at most 2040 bytes (2048-byte malloc chunks)
 * fill such a hole exactly, and a bigger one leaves half of it unused.  Look for padding first. */
_Static_assert(sizeof(struct pd_conn) <= 2040, "struct pd_conn outgrew two per 4 KiB malloc hole");

/* local_addrs.c: this host's addresses count as loopback in the address classes */
void pd_local_addrs_start(void);                 /* read now, then every few seconds */
void pd_local_addrs_refresh(void);

/* accept.c */
int pd_listeners_open(const struct ps_config *cfg);
void pd_tcp_keepalive(int fd);                   /* 10 min idle, then 5 probes a minute apart */
void pd_listeners_close(void);
/* "listening on 127.0.0.1:3129-3144 (what)": one log line for a PS_REDIRECT_PORTS range. */
void pd_log_listen_range(const struct ps_sockaddr *a, const char *what);

/* conn.c */
struct pd_conn *pd_conn_new(int cfd, enum pd_mode mode);
void pd_conn_free(struct pd_conn *c);            /* on whichever loop holds c */
/* pd->loop: close record, cap slot, conf reference, then the sockets a relay loop left open, memory */
void pd_conn_finish(struct pd_conn *c);
void pd_conn_update(struct pd_conn *c);          /* recompute epoll interest */
void pd_conn_io(struct pd_loop *l, int fd, uint32_t ev, void *arg);
void pd_conn_deny(struct pd_conn *c, const char *reason, const char *rule);
void pd_conn_fail(struct pd_conn *c, int status, const char *reason);
void pd_conn_decide(struct pd_conn *c);          /* host/port set: policy, then connect */
void pd_conn_log(struct pd_conn *c, const char *decision, const char *reason, const char *rule,
                 bool close_record);
void pd_conn_timer(struct pd_conn *c, uint64_t ms);
void pd_conn_drop_upstream(struct pd_conn *c);    /* close ufd, keep the client */
void pd_conn_reset(struct pd_conn *c);            /* transparent denial: RST and free */
/* A relayed connection broke: reset both sockets, so neither peer takes the end for a FIN (but not
 * a side whose stream already ended with our FIN), and free; the close record says REASON. */
void pd_conn_abort(struct pd_conn *c, const char *reason);
void pd_conn_over_cap(struct pd_conn *c);         /* per-account cap reached: 429 or RST */
void pd_conn_linger(struct pd_conn *c);           /* after a final answer: FIN, drain, free */
bool pd_buf_reserve(struct pd_buf *b, size_t need);
void pd_buf_free(struct pd_buf *b);
bool pd_head_has_new_lf(const struct pd_buf *b, size_t *scanned);  /* worth parsing again? */
int pd_buf_flush(struct pd_buf *b, int fd);       /* 1 all written, 0 would block, -1 error */

/* explicit.c */
/* Read and act on the client's request.  True when c is still there, waiting for more of a head;
 * false when it has been answered, handed on or freed (c must not be used then). */
bool pd_explicit_read(struct pd_conn *c);
void pd_explicit_reply(struct pd_conn *c, int status, const char *deny,
                       const char *json_error, const char *detail, bool close);
void pd_explicit_connected(struct pd_conn *c);

/* connect.c */
void pd_connect_start(struct pd_conn *c);
void pd_connect_io(struct pd_conn *c, uint32_t ev);

/* tunnel.c */
void pd_tunnel_start(struct pd_conn *c);
void pd_pipe_release(struct pd_dir *d);           /* close a direction's pipe, if it has one */
void pd_tunnel_io(struct pd_conn *c, int fd, uint32_t ev);   /* fd < 0: flush, register */
void pd_tunnel_check(struct pd_conn *c);          /* the tunnel's timer: keepalive, half-close */
void pd_tunnel_adopt(struct pd_conn *c);          /* on the relay loop it just moved to */
void pd_tunnel_init(void);                        /* before relay loops start */

/* relay.c: decided tunnels that stay busy move from the decision loop (pd->loop) to one of a few
 * relay loops, one per CPU, each in its own thread.  A relay loop only moves bytes: everything
 * that touches shared state (the decision log, the per-account cap, configuration references)
 * stays on pd->loop, where a tunnel closed on a relay loop is handed back to be finished. */
void pd_relays_start(unsigned n);                 /* after the privilege drop; 0: none */
void pd_relays_stop(void);                        /* at exit: join them, finish what they ended */
unsigned pd_relays_default(void);                 /* one per CPU this process may run on, 0 for 1 */
/* On pd->loop, after an event of a tunnel: true when c has moved (c must not be used then). */
bool pd_relay_offer(struct pd_conn *c);
/* On a relay loop: c's sockets are off the loop (still open); hand it back for pd_conn_finish(). */
void pd_relay_retire(struct pd_conn *c);
void pd_relay_forget(struct pd_conn *c);          /* pd_conn_finish: c no longer counts anywhere */

/* forward.c */
void pd_forward_start(struct pd_conn *c);
void pd_forward_io(struct pd_conn *c);
size_t pd_forward_uin_limit(const struct pd_conn *c);   /* bytes of the answer buffered at most */
/* End it; a reset (close record REASON) when an answer to the client has begun. */
void pd_forward_cut(struct pd_conn *c, const char *reason);

/* ident.c */
int pd_identify(struct pd_conn *c, const struct sockaddr *local);
void pd_ident_refresh(struct pd_conn *c);        /* after a reload: the current profile */
void pd_ident_flush(void);                        /* after a reload */
/* The per-account cap (429): false when uid is at its limit. */
bool pd_account_acquire(uid_t uid);

/* binary.c: the executable owning a client socket, for binary= rules */
enum pd_bin_status { PD_BIN_FOUND = 0, PD_BIN_NOT_FOUND = 1, PD_BIN_AMBIGUOUS = 2 };
typedef void (*pd_bin_cb)(void *arg, int status, const char *path);
int pd_binary_start(const char *conf_dir);        /* as root, before the privilege drop */
void *pd_binary_lookup(uid_t uid, uint64_t inode, pd_bin_cb cb, void *arg);  /* NULL: unavailable */
void pd_binary_cancel(void *handle);
/* The helper validates conf_dir (it can read root-only files): cb(arg, status, "FILE:LINE: message\n"
 * lines, secrets).  PD_CONF_VALID comes with the contents of the root-only files (secrets.h; valid
 * only during the call); PD_CONF_VALID_RESTART means valid, but they could not be handed over.
 * NULL when there is no helper. */
enum pd_conf_status { PD_CONF_VALID = 0, PD_CONF_INVALID = 1, PD_CONF_VALID_RESTART = 2 };
struct pd_secrets;
typedef void (*pd_conf_cb)(void *arg, int status, const char *errors, const struct pd_secrets *secrets);
void *pd_helper_check_conf(pd_conf_cb cb, void *arg);
bool pd_profile_uses_binary(const struct ps_profile *p);

/* conf.c */
struct pd_conf *pd_conf_load(const char *dir, bool print_errors);

/* declog.c */
int pd_declog_open(const char *path);            /* (re)open DecisionLog; keeps old on error */
void pd_declog_flush(void);                      /* write out queued records (loop idle hook) */
/* declog_limit.c: denials are logged at up to PD_DENY_LOG_BURST per account per 10 s (a flood of
 * refused queries must not fill the disk); the rest are counted and reported as one record. */
bool pd_declog_admit(const struct pd_log_entry *e);
void pd_declog_report_suppressed(void);          /* now (a timer calls it 10 s into a burst) */

void pd_sockaddr_str(const struct sockaddr *sa, char *out, size_t outlen, bool with_port);

#endif
