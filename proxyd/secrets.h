/* Root-only files (the inference CA key, APIKeyFile=s) for a proxy that is no longer root.
 *
 * sandbox-proxyd reads them as root at start-up.  On SIGHUP it runs unprivileged, so its helper,
 * which keeps CAP_DAC_READ_SEARCH, validates the configuration and hands over the contents of
 * exactly those files; the proxy then reloads in place instead of restarting (a restart would cut
 * every open connection of every account).  The proxy held the same secrets in memory already, so
 * nothing new is exposed to it. */
#ifndef PROXYD_SECRETS_H
#define PROXYD_SECRETS_H

#include <stddef.h>

#define PD_SECRET_FILE_MAX 16384u     /* a PEM key of RSA-8192 is ~6.5 KB; API keys are tiny */
#define PD_SECRETS_MAX 64u            /* files in one hand-over */
#define PD_SECRET_PATH_MAX 4096u

struct pd_secret {
    char *path;
    unsigned char *data;
    size_t len;
};

struct pd_secrets {
    struct pd_secret *v;
    size_t n;
};

/* The contents of path: from s when it holds that path, else read from the file system.
 * *data is NUL-terminated (not counted in *len); release it with pd_secret_wipe.  -1 with a
 * message naming the file in err. */
int pd_secret_read(const struct pd_secrets *s, const char *path, unsigned char **data, size_t *len,
                   char *err, size_t errlen);
void pd_secret_wipe(unsigned char *data, size_t len);

/* Helper side: read path (if it exists) into s.  0 also when it does not exist. */
int pd_secrets_add_file(struct pd_secrets *s, const char *path, char *err, size_t errlen);

/* Wire form: u32 count, then per file u16 path length, path, u32 data length, data (little
 * endian).  encode returns the bytes written, 0 when cap is too small; decode is strict (bounds,
 * no NUL in a path, nothing left over) and returns -1 on any violation. */
size_t pd_secrets_encode(const struct pd_secrets *s, unsigned char *out, size_t cap);
int pd_secrets_decode(struct pd_secrets *s, const unsigned char *in, size_t len);

void pd_secrets_free(struct pd_secrets *s);     /* wipes the contents */

#endif
