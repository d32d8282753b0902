/* The in-memory form of /etc/pam_sandbox (DESIGN.md §3).  common/ is the only code that knows the
 * config language; every other part consumes these structures and never re-parses a file. */
#ifndef PS_CONFIG_H
#define PS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <netinet/in.h>

#define PS_DEFAULT_CONFDIR "/etc/pam_sandbox"
#define PS_MAX_LINE 4096          /* longer lines are an error, not truncated */
#define PS_MAX_NAME 253           /* DNS name length without trailing dot */
#define PS_DEFAULT_NPROC 512

/* One configuration error: always reported as "FILE:LINE: message" (line 0 = whole file). */
struct ps_diag {
    char *file;
    unsigned line;
    char *msg;
};

struct ps_diags {
    struct ps_diag *v;
    size_t n, cap;
};

void ps_diags_add(struct ps_diags *d, const char *file, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void ps_diags_print(const struct ps_diags *d, FILE *out);   /* one "FILE:LINE: message" per line */
void ps_diags_free(struct ps_diags *d);

/* Where a setting came from, so that explain/decide can name "FILE:LINE". */
struct ps_origin {
    const char *file;             /* points into ps_config's string storage; NULL = default */
    unsigned line;
};

/* An IP network.  A bare address is a CIDR with the full prefix length. */
struct ps_cidr {
    int family;                   /* AF_INET or AF_INET6 */
    uint8_t addr[16];             /* network byte order; IPv4 uses the first 4 bytes */
    uint8_t prefix;
};

struct ps_sockaddr {               /* a listen or upstream address, "127.0.0.1:3128" / "[::1]:3128" */
    struct sockaddr_storage ss;
    socklen_t len;
    struct ps_origin origin;
};

/* A TransparentListen= or DNSListen= PORT stands for PORT .. PORT+PS_REDIRECT_PORTS-1, all of them
 * proxyd's (for DNSListen=, UDP and TCP).
 * Why: nftables `redirect` gives every steered flow the same reply tuple, proxy:PORT <-> host:sport.
 * When a program reuses a source port towards another destination while conntrack still
 * remembers the first flow (a reset TCP one for 10 s, a closed one for 2 minutes, a UDP one for
 * 30 s), the kernel makes the tuple unique by rewriting the SOURCE port, and proxyd's sock_diag
 * lookup of the client then uses a port the client never had (netfilter's `remapped` chain
 * refuses such flows; see nft_render.c).  musl's resolver does it on every lookup: one socket, the
 * same query to each nameserver at once.  Redirected to a port range, the kernel picks the next
 * free listener port instead and leaves the source port alone, unless that many flows of one
 * source port are remembered at once. */
#define PS_REDIRECT_PORTS 16
/* The socket mark (SO_MARK) of every listening socket of proxyd.  Setting a socket mark needs
 * CAP_NET_ADMIN (or, since Linux 5.17, CAP_NET_RAW) in the host's network namespace, which
 * proxyd has only while it starts as root; the ruleset's `listeners` chain
 * refuses traffic to proxyd's ports when the socket that would receive it does not carry this
 * mark.  So while proxyd is down (a restart, a crash), a local account that binds one of its ports
 * first receives nothing: neither the steered connections and DNS queries of sandboxed accounts
 * nor anyone's explicit-proxy traffic. */
#define PS_PROXY_SOCKET_MARK 0x70730001u
#define PS_MAX_LISTEN 64          /* addresses per *Listen= key */
#define PS_MAX_RANGED_LISTEN 16   /* TransparentListen=, DNSListen=: each address is 16 ports */

/* ---- sandbox.conf ---- */
struct ps_global {
    char *proxy_user;             /* [Proxy] User=, default "pam-sandbox" */
    struct ps_sockaddr *explicit_listen;    size_t n_explicit_listen;
    struct ps_sockaddr *transparent_listen; size_t n_transparent_listen;
    struct ps_sockaddr *dns_listen;         size_t n_dns_listen;
    struct ps_sockaddr *resolvers;          size_t n_resolvers;  /* empty: /etc/resolv.conf */
    struct ps_cidr synthetic_range;         /* default 198.18.0.0/15 */
    char *upstream_proxy_host;    /* NULL when unset */
    uint16_t upstream_proxy_port;
    char *decision_log;           /* default /var/log/pam_sandbox/decisions.jsonl */
    uint64_t max_request_size;    /* [Inference] MaxRequestSize=, bytes, default 10M */
    uint64_t half_closed_timeout_ms; /* [Proxy] HalfClosedTimeout=, default 10min */
    uint64_t stream_idle_timeout_ms; /* [Inference] StreamIdleTimeout=, default 120s */
    uint64_t request_body_timeout_ms; /* [Inference] RequestBodyTimeout=, default 5min */
};

/* ---- profiles/NAME.conf ---- */
enum ps_host_kind {
    PS_HOST_EXACT,                /* "github.com" (stored lower-case, no trailing dot) */
    PS_HOST_SUFFIX,               /* "*.example.com": stored as "example.com", matches subdomains only */
    PS_HOST_CIDR,                 /* IP literal or CIDR */
};

struct ps_port_range {
    uint16_t lo, hi;              /* inclusive; "*" is 1-65535 */
};

enum ps_rule_action { PS_RULE_ALLOW, PS_RULE_DENY };

struct ps_rule {
    enum ps_rule_action action;
    enum ps_host_kind kind;
    char *host;                   /* EXACT and SUFFIX */
    struct ps_cidr cidr;          /* CIDR */
    struct ps_port_range *ports;  /* never empty: no port means 443 for Allow=, every port for Deny= */
    size_t n_ports;
    char *binary;                 /* absolute path, or NULL */
    struct ps_origin origin;
};

enum ps_network_mode { PS_NET_PROXY, PS_NET_BLOCK };
enum ps_policy_mode { PS_MODE_ENFORCE, PS_MODE_REPORT };

/* AllowNetlink= protocols (bit mask over these). */
enum { PS_NETLINK_AUDIT = 1u << 0, PS_NETLINK_ROUTE = 1u << 1 };

struct ps_limit {
    bool set;                     /* false: leave the resource alone */
    rlim_t soft, hard;            /* RLIM_INFINITY for "infinity" */
    struct ps_origin origin;
};

struct ps_profile {
    char *name;                   /* file name without ".conf" */
    char *file;                   /* full path */

    char **match_groups; size_t n_match_groups;
    char **match_users;  size_t n_match_users;
    struct ps_origin *match_group_origins;  /* parallel to match_groups (FILE:LINE for explain) */
    struct ps_origin *match_user_origins;   /* parallel to match_users */

    struct ps_limit limits[RLIM_NLIMITS];   /* indexed by RLIMIT_*; NPROC and CORE defaulted */
    bool no_new_privs;            /* default yes */
    uint64_t cap_keep;            /* bit per CAP_*; default 0 = drop all */
    int umask;                    /* -1: leave alone */

    enum ps_network_mode network;           /* default proxy */
    unsigned allow_netlink;                 /* PS_NETLINK_* mask, default AUDIT */
    int *deny_syscalls;  size_t n_deny_syscalls;   /* native syscall numbers (libseccomp) */
    int *allow_syscalls; size_t n_allow_syscalls;
    unsigned allow_clone3_line;   /* where AllowSyscalls= named clone3 (checked at the end) */

    struct ps_rule *rules; size_t n_rules;  /* in file order */
    enum ps_policy_mode mode;               /* default enforce */

    bool has_models;              /* [Inference] Models= present */
    bool all_models;              /* Models=* */
    char **models; size_t n_models;
    unsigned requests_per_minute; /* 0 = unlimited */

    /* Where each setting came from (file NULL = default), for sandboxctl explain. */
    struct ps_origin no_new_privs_origin, cap_keep_origin, umask_origin, network_origin,
        allow_netlink_origin, mode_origin, models_origin, rpm_origin;
};

/* ---- inference.d/NAME.conf ---- */
enum ps_api { PS_API_OPENAI, PS_API_ANTHROPIC };

struct ps_model_map {
    char *name;                   /* what requests carry */
    char *upstream;               /* what the backend is sent (== name when not rewritten) */
};

struct ps_backend {
    char *name;
    char *file;
    char *url;                    /* as written: https://host[:port]/path or http://... */
    bool tls;                     /* https */
    char *url_host;
    uint16_t url_port;
    char *url_path;               /* "/v1" etc., no trailing slash, "" for none */
    unsigned url_line;            /* where URL= was set */
    enum ps_api api;
    char *api_key_file;
    struct ps_model_map *models; size_t n_models;
    /* BackendUser=: the account a backend on this host runs as.  An http:// backend whose socket
     * is on this host gets the key only from a socket owned by root, by proxyd's own user or by
     * this account (proxyd/inference_owner.c). */
    bool has_owner;
    uid_t owner_uid;
    char *owner_name;
    unsigned owner_line;          /* where BackendUser= was set, for errors found later */
};

struct ps_config {
    char *dir;
    struct ps_global global;
    struct ps_profile *profiles; size_t n_profiles;   /* in file-name order */
    struct ps_backend *backends; size_t n_backends;
    char **files; size_t n_files, cap_files;   /* storage for ps_origin.file of sandbox.conf */
    char *global_file;                          /* sandbox.conf path when one was read */
};

/* Load and validate everything under dir (sandbox.conf, profiles/, inference.d/, ownership and
 * modes of every file and directory read).  Returns a config only when there is no error; every
 * error found (not just the first) goes to diags.  A missing sandbox.conf is not an error (all
 * defaults); a missing dir is. */
struct ps_config *ps_config_load(const char *dir, struct ps_diags *diags);

/* The same, for a process that has dropped root (sandbox-proxyd on SIGHUP): a key or secret file
 * (APIKeyFile=, the ca/ keys) that cannot be opened for lack of permission is not an error, because
 * a privileged party checks and reads exactly those files (proxyd's helper).  Every other file is
 * checked as by ps_config_load. */
#define PS_LOAD_SECRETS_ELSEWHERE 1u
struct ps_config *ps_config_load_flags(const char *dir, unsigned flags, struct ps_diags *diags);

/* Parse from memory, for tests and fuzzing: no file-system checks. kind selects the grammar. */
enum ps_file_kind { PS_FILE_GLOBAL, PS_FILE_PROFILE, PS_FILE_BACKEND };
int ps_config_parse_buffer(struct ps_config *cfg, enum ps_file_kind kind, const char *name,
                           const char *buf, size_t len, struct ps_diags *diags);
struct ps_config *ps_config_new_empty(const char *dir);   /* all defaults, no profiles */

void ps_config_free(struct ps_config *cfg);

/* Helpers for explain and logs: "LimitNOFILE" for RLIMIT_NOFILE (NULL if none), and back. */
const char *ps_limit_name(int resource);
int ps_limit_by_name(const char *name);

/* Key/secret file check (root-owned, not other-readable, not group/other-writable). */
int ps_check_secret_file(const char *path, struct ps_diags *diags);

#endif
