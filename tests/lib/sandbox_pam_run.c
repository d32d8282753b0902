/* sandbox_pam_run: a minimal PAM application with the lifecycle of su/cron (DESIGN.md §9.1), used
 * by the pam_sandbox integration tests.  As root:
 *   sandbox_pam_run SERVICE USER CMD [ARG...]
 * pam_start, pam_setcred(ESTABLISH), pam_open_session, then a child that becomes USER (groups,
 * gid, uid) and execs CMD with the PAM environment, while this process (which open_session
 * confined, like su's parent) waits; then pam_close_session, pam_setcred(DELETE), pam_end.
 * Each PAM step prints "STEP: result" to stderr; the exit status is 0 only if every step
 * succeeded, else 10+ the failing step; the command's own status is printed as "command: N". */
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <security/pam_appl.h>

static int no_conv(int n, const struct pam_message **m, struct pam_response **r, void *d)
{
    (void)n; (void)m; (void)r; (void)d;
    return PAM_CONV_ERR;
}

static int step(pam_handle_t *h, const char *name, int rc)
{
    fprintf(stderr, "%s: %s\n", name, pam_strerror(h, rc));
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s SERVICE USER CMD [ARG...]\n", argv[0]);
        return 2;
    }
    struct pam_conv conv = { no_conv, NULL };
    pam_handle_t *h = NULL;
    struct passwd *pw = getpwnam(argv[2]);
    if (!pw) {
        fprintf(stderr, "no such user %s\n", argv[2]);
        return 2;
    }
    /* Modules call getpwnam() too (pam_sandbox looks up [Proxy] User=), which overwrites the
     * static result: keep a copy, or the command runs as whoever a module looked up last. */
    struct passwd user = *pw;
    user.pw_name = strdup(pw->pw_name);
    user.pw_dir = strdup(pw->pw_dir);
    pw = &user;
    if (step(h, "pam_start", pam_start(argv[1], argv[2], &conv, &h)) != PAM_SUCCESS)
        return 10;
    int fail = 0;
    if (step(h, "pam_setcred(ESTABLISH)", pam_setcred(h, PAM_ESTABLISH_CRED)) != PAM_SUCCESS)
        fail = 11;
    int rc = step(h, "pam_open_session", pam_open_session(h, 0));
    if (rc != PAM_SUCCESS) {
        pam_end(h, rc);
        return 12;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        char **env = pam_getenvlist(h);
        if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
            setuid(pw->pw_uid) < 0) {
            perror("becoming the user");
            _exit(126);
        }
        if (chdir(pw->pw_dir) < 0 && chdir("/") < 0)
            _exit(126);
        execvpe(argv[3], argv + 3, env ? env : (char *[]){ NULL });
        perror(argv[3]);
        _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0)
        perror("fork/wait");
    else if (WIFEXITED(st))
        fprintf(stderr, "command: %d\n", WEXITSTATUS(st));
    else
        fprintf(stderr, "command: killed by signal %d\n", WTERMSIG(st));
    if (step(h, "pam_close_session", pam_close_session(h, 0)) != PAM_SUCCESS && !fail)
        fail = 13;
    if (step(h, "pam_setcred(DELETE)", pam_setcred(h, PAM_DELETE_CRED)) != PAM_SUCCESS && !fail)
        fail = 14;
    rc = pam_end(h, PAM_SUCCESS);        /* h is gone: pam_strerror does not need it */
    if (step(NULL, "pam_end", rc) != PAM_SUCCESS && !fail)
        fail = 15;
    return fail;
}
