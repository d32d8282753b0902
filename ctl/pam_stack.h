/* How libpam reads the control field of a PAM line and walks a session stack, as far as sandboxctl
 * doctor needs it to tell whether pam_sandbox.so always runs and whether its failure refuses the
 * session.  Modelled on Linux-PAM 1.5 (pam_handlers.c, pam_misc.c, pam_dispatch.c), and checked
 * against Debian 12's libpam with the built module (t_doctor's stacks). */
#ifndef PS_CTL_PAM_STACK_H
#define PS_CTL_PAM_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <security/_pam_types.h>  /* the return values (PAM_SYSTEM_ERR, ...) index the actions */

#define PAM_STACK_NVALUES 32      /* the return values PAM_SUCCESS .. PAM_INCOMPLETE */

/* An action: one of these, or > 0: jump over that many modules. */
enum {
    PAM_ACT_IGNORE = 0,
    PAM_ACT_OK = -1,
    PAM_ACT_DONE = -2,
    PAM_ACT_BAD = -3,
    PAM_ACT_DIE = -4,
    PAM_ACT_RESET = -5,
};

/* A control field, as the action libpam takes for each return value of the module. */
struct pam_control {
    int act[PAM_STACK_NVALUES];
    uint32_t given;               /* bit v: act[v] was named in the field (else it came by default) */
};

enum pam_control_kind { PAM_CONTROL_MODULE, PAM_CONTROL_INCLUDE, PAM_CONTROL_SUBSTACK };

/* Parse a control as written ("required", "[success=1 default=ignore]", ...).  What libpam cannot
 * parse makes every action "bad", as libpam does. */
enum pam_control_kind pam_control_parse(const char *control, struct pam_control *c);

/* "success", "system_err", ... for a return value. */
const char *pam_value_name(int value);

/* "ignore", "done", "3", ... into buf. */
const char *pam_action_name(int act, char *buf, size_t len);

/* "system_err=ignore" or, when the field did not name the value, "default=ignore" into buf. */
const char *pam_control_explain(const struct pam_control *c, int value, char *buf, size_t len);

/* One handler of a flattened session stack, in libpam's order.  An included file's lines keep the
 * level of the include; a substack's lines are one level deeper than its own line, which libpam
 * passes over (runs = false) but which counts as one module for a jump in its level. */
struct pam_step {
    int level;
    bool runs;
    struct pam_control ctl;
};

/* If the module at s[at] fails to confine (PAM_SYSTEM_ERR) or cannot be loaded
 * (PAM_MODULE_UNKNOWN), can the stack still succeed?  The return value whose action lets it
 * (ignore, reset, a jump), or -1. */
int pam_failure_passes(const struct pam_control *c);

/* Can s[i] (i < at) keep s[at] from running, with "done" or a jump landing on or past it?  The
 * return value whose action does, or -1. */
int pam_step_skips(const struct pam_step *s, size_t n, size_t i, size_t at);

/* Can s[j] (j > at) make the stack forget that s[at] failed, with "reset"?  The return value
 * whose action does, or -1. */
int pam_step_forgets(const struct pam_step *s, size_t n, size_t j, size_t at);

#endif
