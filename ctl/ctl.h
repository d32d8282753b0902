/* sandboxctl: one file per subcommand (ctl/cmd_NAME.c defines cmd_NAME).  A subcommand whose file
 * is not built yet is reported as unavailable with exit 2 (weak symbol). */
#ifndef PS_CTL_H
#define PS_CTL_H

struct ctl_opts {
    const char *confdir;          /* -c DIR, default /etc/pam_sandbox */
};

/* argv[0] is the subcommand name; return the process exit code (0 ok, 1 config/policy error,
 * 2 usage). */
#define CTL_COMMANDS(X) \
    X(check)   X(explain) X(decide) X(apply) X(status) X(flush) \
    X(ca)      X(denials) X(doctor)

#define X(name) int cmd_##name(const struct ctl_opts *o, int argc, char **argv) __attribute__((weak));
CTL_COMMANDS(X)
#undef X

/* ctl/ctl_conf.c: load and validate o->confdir; on any error print every "FILE:LINE: message" to
 * stderr and return NULL (the caller exits 1). */
struct ps_config;
struct ps_config *ctl_load_config(const struct ctl_opts *o);

/* listener_marks.c: every socket on one of cfg's proxyd endpoints (explicit, transparent and
 * DNS ranges, TCP and UDP) that lacks PS_PROXY_SOCKET_MARK, which the ruleset refuses all traffic
 * to; where is "127.0.0.1:3129/tcp", key the *Listen= key.  Needs root (the kernel tells marks only
 * to CAP_NET_ADMIN): otherwise nothing is reported. */
struct ps_bound_socket;
struct ps_origin;
typedef void (*ctl_unmarked_cb)(void *arg, const struct ps_bound_socket *s, const char *where,
                                const char *key, const struct ps_origin *origin);
void ctl_unmarked_listeners(const struct ps_config *cfg, ctl_unmarked_cb cb, void *arg);

#endif
