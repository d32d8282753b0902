/* sandboxctl doctor: shared state of the checks (ctl/cmd_doctor.c drives them, ctl/doctor_*.c
 * hold one family of checks each).  Every check reads files below a root directory, so tests can
 * point it at a prepared tree; what is live by nature (the nftables ruleset, a process, a
 * per-network-namespace sysctl) is read from the running system. */
#ifndef PS_CTL_DOCTOR_INT_H
#define PS_CTL_DOCTOR_INT_H

#include <stddef.h>
#include <stdio.h>
#include "common/config.h"
#include "common/resolve.h"

struct doc_account {              /* an account that a profile sandboxes */
    struct ps_identity id;
    const struct ps_profile *profile;
};

struct doctor {
    const char *root;             /* "/" or a tree prepared by a test */
    const struct ps_config *cfg;  /* NULL when the config does not load (itself a finding) */
    struct doc_account *acct; size_t n_acct, cap_acct;
    unsigned findings;
    FILE *out;
};

/* One finding, one line: "FILE[:LINE]: what is wrong; fix: what to do".  file is shown as the
 * path on the host (relative to the root), line 0 = the whole file. */
void doc_finding(struct doctor *d, const char *file, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Information, not a finding: "FILE: note: what"; the exit status does not change.  For a
 * protection the running kernel lacks: only another kernel or boot command line brings it. */
void doc_note(struct doctor *d, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* root + path (path absolute), into buf. */
const char *doc_path(const struct doctor *d, const char *path, char *buf, size_t len);

/* Read a whole file below the root (NUL-terminated, at most 1 MiB); NULL if absent or unreadable. */
char *doc_read(const struct doctor *d, const char *path);

/* Is any sandboxed account a member of group gid / named name? (NULL if none) */
const struct doc_account *doc_account_in_gid(const struct doctor *d, gid_t gid);

/* The checks. */
void doc_check_pam(struct doctor *d);       /* stacks, and pam_limits after the module */
void doc_check_limits(struct doctor *d, const char *conf_path, const char *stack_file);
void doc_check_sshd(struct doctor *d);
void doc_check_sudoers(struct doctor *d);
void doc_check_ruleset(struct doctor *d);
void doc_check_proxyd(struct doctor *d);
void doc_check_listener_marks(struct doctor *d);  /* listener_marks.c */
void doc_check_backend_owners(struct doctor *d);  /* http:// backends on loopback */
void doc_check_dns_sockets(struct doctor *d);
void doc_check_ping(struct doctor *d);
void doc_check_ptrace(struct doctor *d);    /* Yama's ptrace_scope */
void doc_check_daemon_sockets(struct doctor *d);        /* doctor_daemons.c */
void doc_check_unconfined_processes(struct doctor *d);  /* doctor_daemons.c */

#endif
