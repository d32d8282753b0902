/* The loop side of inference.local: daemon state (CA, leaf, backend keys, rate buckets), one
 * client connection with its TLS session, and the exchange with a backend.  Everything runs on the
 * proxyd loop with non-blocking sockets; one driver (inf_conn_run) does all work of a connection,
 * for events on either socket, timers and resolver answers alike, so nothing re-enters. */
#ifndef PD_INFERENCE_CONN_H
#define PD_INFERENCE_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <openssl/ssl.h>
#include "proxyd/proxyd.h"
#include "proxyd/http_parse.h"
#include "proxyd/inference_int.h"

/* ---- proxyd/inference_tls.c: state built from one config snapshot ---- */
struct inf_key {
    char *backend;                /* ps_backend.name */
    char *url;                    /* ... and the definition it was loaded for: */
    char *key_file;               /* URL= and APIKeyFile= (NULL: none) */
    char *value;                  /* the secret; never logged, wiped on free */
};

struct inf_state {
    unsigned refs;
    SSL_CTX *srv;                 /* serves the inference.local leaf */
    SSL_CTX *cli;                 /* backends: system trust store, peer verified */
    X509 *ca;
    EVP_PKEY *ca_key;
    time_t leaf_not_after;
    struct inf_key *keys;
    size_t n_keys;
};

struct inf_daemon {               /* what pd->inference points to */
    struct inf_state *cur;        /* NULL: interception unavailable (no CA) */
    struct inf_rate *rate;        /* survives reloads */
    struct inf_budget *budget;    /* request-body memory held, per account; survives reloads */
    char last_error[256];
};

/* sec: the root-only files as handed over by the helper (NULL: read them from the file system). */
struct pd_secrets;
struct inf_state *inf_state_load(const struct ps_config *cfg, const struct pd_secrets *sec, char *err,
                                 size_t errlen);
struct inf_state *inf_state_ref(struct inf_state *s);
void inf_state_unref(struct inf_state *s);
/* Re-issue the leaf when it is close to expiry (a daemon may run for months without reload). */
void inf_state_refresh_leaf(struct inf_state *s);
/* The key loaded for backend be (NULL: it has none).  *ok is false when this state was loaded for
 * another definition of be: a reload changed its URL= or APIKeyFile= but the new key could not be
 * loaded, so the state in force still holds the old one, which must not go to the new URL. */
const char *inf_state_key(const struct inf_state *s, const struct ps_backend *be, bool *ok);

/* ---- proxyd/inference_io.c: byte buffers and a socket that may carry TLS ---- */
struct inf_buf {
    char *p;
    size_t len, cap, off;         /* live bytes are p[off..len) */
};
void inf_buf_add(struct inf_buf *b, const void *d, size_t n);
void inf_buf_printf(struct inf_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
size_t inf_buf_used(const struct inf_buf *b);
const char *inf_buf_data(const struct inf_buf *b);
void inf_buf_consume(struct inf_buf *b, size_t n);
void inf_buf_reset(struct inf_buf *b);
void inf_buf_free(struct inf_buf *b);
/* Make room for n more bytes and return where they go (commit with inf_buf_commit). */
char *inf_buf_space(struct inf_buf *b, size_t n);
void inf_buf_commit(struct inf_buf *b, size_t n);

struct inf_io {
    int fd;
    SSL *ssl;                     /* NULL: plain TCP */
    uint32_t rd_want, wr_want;    /* epoll events the last blocked read / write waits for */
    bool rd_blocked, wr_blocked;
};
enum { INF_IO_AGAIN = -1, INF_IO_ERR = -2 };
ssize_t inf_io_read(struct inf_io *io, void *buf, size_t n);       /* >0, 0 EOF, AGAIN, ERR */
ssize_t inf_io_write(struct inf_io *io, const void *buf, size_t n);
int inf_io_handshake(struct inf_io *io);                           /* 1 done, 0 again, -1 error */
/* Write as much of b as the socket takes; -1 on error. */
int inf_io_flush(struct inf_io *io, struct inf_buf *b);

/* ---- a client connection (proxyd/inference_conn.c) ---- */
enum inf_phase {
    INF_PH_HANDSHAKE,             /* TLS with the client */
    INF_PH_HEAD,                  /* waiting for a request head */
    INF_PH_BODY,                  /* reading its body */
    INF_PH_UPSTREAM,              /* a backend exchange is under way */
    INF_PH_CLOSING,               /* flush what is queued, then close */
};

struct inf_up;

struct inf_conn {
    struct inf_io c;
    struct pd_client who;
    struct inf_state *st;
    enum inf_phase phase;
    bool dead;                    /* close now, queued output or not */
    bool close_after;             /* close once the current response is out */
    bool linger;                  /* answer sent and write side shut: draining unread input */
    size_t lingered;
    struct inf_buf in, out, body;
    uint64_t deadline_ms;         /* the current phase's timeout */
    struct pd_timer *timer;
    uint64_t timer_at;
    uint64_t started_ms;          /* of the current request */
    uint64_t accepted_ms;         /* of the connection, for its close record */
    int64_t bytes_up, bytes_down; /* plaintext each way over the whole connection */
    /* the request being handled */
    struct http_request req;      /* spans into `in`, valid while phase is BODY */
    int64_t body_need;            /* Content-Length bytes still to read; -1 chunked */
    uint64_t body_reserved;       /* of the daemon's request-body budget (inference_budget.c) */
    uint64_t out_reserved;        /* ... for a held answer now queued in out, until out drains */
    uint64_t body_deadline_ms;    /* the whole body must be here by then, however it trickles */
    struct http_chunked ck;
    enum inf_endpoint ep;
    enum ps_api api;
    char hdrs[2048];              /* allow-listed client headers, re-serialised */
    size_t hdrs_len;
    char anthropic_version[64];
    struct inf_up *up;
};

void inf_conn_run(struct inf_conn *k);
/* The client is not taking the answer as fast as the backend gives it. */
bool inf_conn_backpressure(const struct inf_conn *k);
/* The rate buckets (kept across reloads). */
struct inf_rate *inf_daemon_rate(void);
/* The request-body memory budget (kept across reloads). */
struct inf_budget *inf_daemon_budget(void);
/* Queue a complete response and go on (keep-alive) or close after it. */
void inf_conn_respond(struct inf_conn *k, int status, const char *extra_headers,
                      const char *ctype, const char *body, size_t len, bool close);
void inf_conn_set_deadline(struct inf_conn *k, uint64_t ms_from_now);
/* A request is finished (the response is queued): log, reset for the next request. */
void inf_conn_request_done(struct inf_conn *k);

/* ---- proxyd/inference_request.c: a complete request ---- */
/* At the head of a request bound for a backend: may it go on (its account's rate limit)?  When not,
 * the refusal is queued and logged and the connection closes after it (its body is never read). */
bool inf_request_admit(struct inf_conn *k);
void inf_request_handle(struct inf_conn *k);
/* The decision-log line of one request (no key, token or body, ever). */
/* The connection's close record (DESIGN.md §5.5: bytes each way and duration at close); the
 * per-request records carry model, status and usage. */
void inf_log_close(struct inf_conn *k);
void inf_log(struct inf_conn *k, const char *decision, const char *reason, const char *model,
             const char *upstream_model, const char *backend, int status,
             const struct inf_usage *u);

/* ---- proxyd/inference_owner.c ---- */
/* May the request (with its key) go over this connected plain-http socket fd to backend be?
 * MISMATCH sets *owner_uid to the owner found. */
enum inf_owner {
    INF_OWNER_OK,                 /* remote, or held by root, proxyd's user or BackendUser= */
    INF_OWNER_PENDING,            /* on this host, not accept()ed yet: ask again shortly */
    INF_OWNER_MISMATCH,           /* held by another account: never send */
    INF_OWNER_UNKNOWN,            /* the kernel could not be asked */
};
enum inf_owner inf_backend_owner(int fd, const struct ps_backend *be, int64_t *owner_uid);

/* ---- proxyd/inference_backend.c: one exchange with a backend ---- */
struct inf_up {
    struct inf_conn *k;
    const struct ps_backend *be;
    struct inf_io io;
    int phase;                            /* INF_UP_* */
    struct resolver_query *q;
    struct sockaddr_storage addrs[8];
    size_t n_addrs, next_addr;
    char address[64];                     /* connected to, for the log */
    int64_t owner_uid;                    /* a refused http:// backend's socket owner, or -1 */
    struct pd_timer *owner_timer;         /* INF_UP_OWNER: the next look at the backend's end */
    unsigned owner_wait_ms;
    struct inf_buf out, in;
    struct http_response resp;
    enum http_body_kind body_kind;
    int64_t remaining;                    /* LENGTH bytes left */
    struct http_chunked ck;
    bool eof;                             /* the backend closed */
    bool body_done;                       /* the framing says the body is complete */
    /* what the response means to the client */
    bool sse;
    bool head_sent;
    bool strip_usage_chunk;               /* we asked for usage, the client did not */
    bool saw_final;                       /* [DONE] / message_stop / response.completed seen */
    struct inf_sse ev;
    struct inf_buf body;                  /* non-streamed answers, bounded */
    uint64_t body_reserved;               /* of the daemon's budget, for body (inference_budget.c) */
    struct inf_usage usage;
    int status;                           /* the backend's */
    char fwd[1024];                       /* allow-listed response headers, re-serialised */
    size_t fwd_len;
    const char *cut;                      /* set when the body cannot go on (reason) */
    bool stream_req;                      /* the client asked for a stream */
    bool reused;                          /* on a kept-alive backend connection */
    bool got_bytes;                       /* any response byte arrived */
    bool backend_close;                   /* the backend said Connection: close */
    bool reusable;                        /* clean end: the connection may serve another request */
    struct inf_buf retry;                 /* the request, while a reused connection may be stale */
    char model[257], upstream_model[257];
    const char *fail_reason;              /* set when the exchange failed */
};
enum { INF_UP_RESOLVE, INF_UP_CONNECT, INF_UP_OWNER, INF_UP_TLS, INF_UP_SEND, INF_UP_HEAD, INF_UP_BODY, INF_UP_DONE };

struct inf_up *inf_up_start(struct inf_conn *k, const struct ps_backend *be, char *request,
                            size_t len);
/* Drive the exchange; returns true on progress.  Feeds the response into k->out. */
bool inf_up_run(struct inf_up *u);
void inf_up_free(struct inf_up *u);
uint32_t inf_up_events(const struct inf_up *u);
/* The StreamIdleTimeout (or connect timeout) expired. */
void inf_up_timeout(struct inf_up *u);

/* ---- proxyd/inference_stream.c: the response, from backend bytes to client bytes ---- */
/* Body bytes (already de-framed) arrived. */
void inf_stream_body(struct inf_up *u, const char *data, size_t len);
/* The response head arrived: decide SSE vs buffered, queue the client's head for SSE. */
void inf_stream_head(struct inf_up *u);
/* The body ended: complete (framing done) or cut short (reason). */
void inf_stream_end(struct inf_up *u, const char *cut_reason);

#endif
