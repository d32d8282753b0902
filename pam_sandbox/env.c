/* Step 3 of open_session: the environment a sandboxed session starts with (DESIGN.md §4.1).
 * Programs that honour HTTP(S)_PROXY go to proxyd's explicit port directly (a 403 with a reason
 * instead of a reset); everything else is steered by nftables anyway.  The CA variables make
 * common TLS stacks trust the inference.local certificate; the SDK variables make the official
 * OpenAI/Anthropic SDKs talk to inference.local with no setup. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <security/pam_ext.h>
#include "common/policy.h"
#include "pam_sandbox/sandbox.h"

/* A placeholder for the SDKs, which refuse to start without a key.  proxyd strips whatever
 * credential a client sends and adds the admin's; this string is worth nothing anywhere else. */
#define PS_PLACEHOLDER_KEY "pam-sandbox-placeholder-key"

static int put(pam_handle_t *pamh, const char *name, const char *value, char *err, size_t errlen)
{
    char buf[4200];
    int n = snprintf(buf, sizeof buf, "%s=%s", name, value);
    if (n < 0 || (size_t)n >= sizeof buf) {
        snprintf(err, errlen, "environment: value of %s too long", name);
        return -1;
    }
    int r = pam_putenv(pamh, buf);
    if (r != PAM_SUCCESS) {
        snprintf(err, errlen, "pam_putenv(%s): %s", name, pam_strerror(pamh, r));
        return -1;
    }
    return 0;
}

/* "http://127.0.0.1:3128" or "http://[::1]:3128" */
static int proxy_url(const struct ps_sockaddr *a, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN];
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)&a->ss;
        inet_ntop(AF_INET, &s->sin_addr, host, sizeof host);
        snprintf(out, outlen, "http://%s:%u", host, (unsigned)ntohs(s->sin_port));
        return 0;
    }
    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&a->ss;
        inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof host);
        snprintf(out, outlen, "http://[%s]:%u", host, (unsigned)ntohs(s->sin6_port));
        return 0;
    }
    return -1;
}

int ps_session_env(pam_handle_t *pamh, const struct ps_config *cfg, const struct ps_profile *p,
                   char *err, size_t errlen)
{
    char url[128], path[4096];
    if (cfg->global.n_explicit_listen > 0) {
        if (proxy_url(&cfg->global.explicit_listen[0], url, sizeof url) < 0) {
            snprintf(err, errlen, "environment: ExplicitListen= has an unknown address family");
            return -1;
        }
        static const char *const names[] = { "HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
                                             "https_proxy" };
        for (size_t i = 0; i < sizeof names / sizeof *names; i++)
            if (put(pamh, names[i], url, err, errlen) < 0)
                return -1;
    }
    /* Empty: a NO_PROXY inherited from elsewhere must not send traffic around the explicit port. */
    if (put(pamh, "NO_PROXY", "", err, errlen) < 0 || put(pamh, "no_proxy", "", err, errlen) < 0)
        return -1;

    /* The CA variables replace each tool's trust store, so they are set only when the file they
     * name exists (after `sandboxctl ca init`): pointing SSL_CERT_FILE at a missing bundle would
     * break every TLS connection of the session. */
    snprintf(path, sizeof path, "%s/ca/bundle.pem", cfg->dir);
    if (access(path, R_OK) == 0) {
        static const char *const names[] = { "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
                                             "GIT_SSL_CAINFO" };
        for (size_t i = 0; i < sizeof names / sizeof *names; i++)
            if (put(pamh, names[i], path, err, errlen) < 0)
                return -1;
    }
    /* Node adds NODE_EXTRA_CA_CERTS to its built-in roots: the CA alone is what it wants. */
    snprintf(path, sizeof path, "%s/ca/inference-ca.pem", cfg->dir);
    if (access(path, R_OK) == 0 && put(pamh, "NODE_EXTRA_CA_CERTS", path, err, errlen) < 0)
        return -1;

    if (ps_profile_uses_inference(p)) {
        if (put(pamh, "OPENAI_BASE_URL", "https://inference.local/v1", err, errlen) < 0 ||
            put(pamh, "ANTHROPIC_BASE_URL", "https://inference.local", err, errlen) < 0 ||
            put(pamh, "OPENAI_API_KEY", PS_PLACEHOLDER_KEY, err, errlen) < 0 ||
            put(pamh, "ANTHROPIC_API_KEY", PS_PLACEHOLDER_KEY, err, errlen) < 0)
            return -1;
    }
    return 0;
}
