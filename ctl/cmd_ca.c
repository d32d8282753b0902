/* sandboxctl ca init [--force]: create the inference.local CA (DESIGN.md §2, §5.4).
 *
 * An ECDSA P-256 CA whose certificate carries a *critical* X.509 nameConstraints extension
 * permitting only DNS:inference.local, so that even a stolen CA key cannot mint a certificate
 * that a verifier accepts for any other name.  Files under CONFDIR/ca/:
 *   inference-ca.pem  the CA certificate (0644)
 *   inference-ca.key  its private key (0600, root only: proxyd reads it as root at start/reload)
 *   bundle.pem        the system trust store plus our CA (0644), for SSL_CERT_FILE & co.
 * An existing CA is never overwritten without --force: replacing it breaks every session that
 * pinned the old one through NODE_EXTRA_CA_CERTS. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include "ctl/ctl.h"

#define CA_SYSTEM_BUNDLE "/etc/ssl/certs/ca-certificates.crt"
#define CA_VALID_DAYS (10 * 365)

static int add_ext(X509 *cert, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return -1;
    int rc = X509_add_ext(cert, ext, -1) ? 0 : -1;
    X509_EXTENSION_free(ext);
    return rc;
}

static X509 *make_ca_cert(EVP_PKEY *key)
{
    X509 *cert = X509_new();
    if (!cert)
        return NULL;
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    if (RAND_bytes(serial, sizeof serial) != 1)
        goto fail;
    serial[0] &= 0x7f;                     /* positive */
    bn = BN_bin2bn(serial, sizeof serial, NULL);
    if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)))
        goto fail;
    X509_set_version(cert, 2);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_time_adj_ex(X509_getm_notAfter(cert), CA_VALID_DAYS, 0, NULL);
    X509_NAME *name = X509_get_subject_name(cert);
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    char cn[320];
    snprintf(cn, sizeof cn, "pam_sandbox inference.local CA (%s)", host);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"pam_sandbox", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509_set_pubkey(cert, key);
    if (add_ext(cert, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") < 0 ||
        add_ext(cert, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
        add_ext(cert, NID_subject_key_identifier, "hash") < 0 ||
        /* Only inference.local, and only as a TLS server name.  A name type that a constraint
         * does not mention is unconstrained (RFC 5280 4.2.1.10): without the exclusions a leaf for
         * any IP address would verify, so a stolen key could impersonate every IP-literal HTTPS
         * endpoint to the sessions that trust this CA.  The EKU keeps it to server certificates. */
        add_ext(cert, NID_name_constraints, "critical,permitted;DNS:inference.local,"
                                            "excluded;IP:0.0.0.0/0.0.0.0,excluded;IP:::/::") < 0 ||
        add_ext(cert, NID_ext_key_usage, "serverAuth") < 0)
        goto fail;
    if (!X509_sign(cert, key, EVP_sha256()))
        goto fail;
    BN_free(bn);
    return cert;
fail:
    BN_free(bn);
    X509_free(cert);
    return NULL;
}

/* Write via a temporary file in the same directory and rename, so a reader never sees half a
 * file and a crash never leaves a key with the wrong mode. */
/* Write DIR/.NAME.tmp; commit_files() renames it into place.  All three files are written before
 * any is renamed, so a failure (say, no system trust store for the bundle) leaves no half-made CA
 * behind: no key without its certificate, nothing that makes the next 'ca init' refuse. */
static int write_file(const char *dir, const char *name, mode_t mode,
                      int (*fill)(FILE *f, void *arg), void *arg)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        fprintf(stderr, "sandboxctl: ca: %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    if (fchmod(fd, mode) < 0) {            /* the umask must not widen or narrow it */
        fprintf(stderr, "sandboxctl: ca: chmod %s: %s\n", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        return -1;
    }
    int rc = fill(f, arg);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        rc = -1;
    if (fclose(f) != 0)
        rc = -1;
    if (rc != 0) {
        fprintf(stderr, "sandboxctl: ca: could not write %s\n", path);
        unlink(tmp);
    }
    return rc;
}

static void drop_tmp(const char *dir, const char *name)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    unlink(tmp);
}

/* Rename the temporary files into place, the key last: a certificate without its key is refused
 * by proxyd (and by the next 'ca init' without --force), but never used with a stale key. */
static int commit_files(const char *dir, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char path[4200], tmp[4200];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, names[i]);
        if (rename(tmp, path) != 0) {
            fprintf(stderr, "sandboxctl: ca: rename %s: %s\n", path, strerror(errno));
            for (size_t j = i; j < n; j++)
                drop_tmp(dir, names[j]);
            return -1;
        }
    }
    return 0;
}

static int fill_key(FILE *f, void *arg)
{
    return PEM_write_PrivateKey(f, arg, NULL, NULL, 0, NULL, NULL) ? 0 : -1;
}

static int fill_cert(FILE *f, void *arg)
{
    return PEM_write_X509(f, arg) ? 0 : -1;
}

static int fill_bundle(FILE *f, void *arg)
{
    FILE *sys = fopen(CA_SYSTEM_BUNDLE, "re");
    if (!sys) {
        fprintf(stderr, "sandboxctl: ca: %s: %s (install ca-certificates)\n", CA_SYSTEM_BUNDLE,
                strerror(errno));
        return -1;
    }
    char buf[65536];
    size_t n;
    int last = '\n';
    while ((n = fread(buf, 1, sizeof buf, sys)) > 0) {
        if (fwrite(buf, 1, n, f) != n) {
            fclose(sys);
            return -1;
        }
        last = buf[n - 1];
    }
    int err = ferror(sys);
    fclose(sys);
    if (err)
        return -1;
    if (last != '\n')
        fputc('\n', f);
    fprintf(f, "# pam_sandbox inference.local CA\n");
    return fill_cert(f, arg);
}

static int ensure_dir(const char *dir)
{
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "sandboxctl: ca: mkdir %s: %s\n", dir, strerror(errno));
        return -1;
    }
    struct stat st;
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "sandboxctl: ca: %s is not a directory\n", dir);
        return -1;
    }
    /* The config loader insists on root-owned, not group/other-writable directories. */
    if (st.st_uid != geteuid() || (st.st_mode & 022)) {
        fprintf(stderr, "sandboxctl: ca: %s must be owned by uid %u and not writable by group "
                "or others\n", dir, (unsigned)geteuid());
        return -1;
    }
    return 0;
}

static int ca_init(const char *confdir, int force)
{
    char dir[4096], probe[4200];
    snprintf(dir, sizeof dir, "%s/ca", confdir);
    snprintf(probe, sizeof probe, "%s/inference-ca.key", dir);
    if (!force && (access(probe, F_OK) == 0 ||
                   (snprintf(probe, sizeof probe, "%s/inference-ca.pem", dir), access(probe, F_OK) == 0))) {
        fprintf(stderr, "sandboxctl: ca: %s already exists; refusing to replace the CA "
                "(use 'ca init --force', then restart every session)\n", probe);
        return 1;
    }
    if (ensure_dir(dir) < 0)
        return 1;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = key ? make_ca_cert(key) : NULL;
    int rc = 1;
    if (!cert) {
        fprintf(stderr, "sandboxctl: ca: could not create the CA certificate\n");
    } else {
        static const char *const order[] = { "bundle.pem", "inference-ca.pem", "inference-ca.key" };
        if (write_file(dir, "bundle.pem", 0644, fill_bundle, cert) == 0 &&
            write_file(dir, "inference-ca.pem", 0644, fill_cert, cert) == 0 &&
            write_file(dir, "inference-ca.key", 0600, fill_key, key) == 0 &&
            commit_files(dir, order, 3) == 0) {
            printf("%s/inference-ca.pem: CA for DNS:inference.local only (ECDSA P-256, %d days)\n",
                   dir, CA_VALID_DAYS);
            printf("%s/bundle.pem: system CAs plus this CA\n", dir);
            /* A reload is enough: proxyd's privileged helper hands it the new key. */
            printf("run 'sandboxctl apply' (or systemctl reload sandbox-proxyd) to serve a leaf from it\n");
            rc = 0;
        } else {
            for (size_t i = 0; i < 3; i++)
                drop_tmp(dir, order[i]);
        }
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

int cmd_ca(const struct ctl_opts *o, int argc, char **argv)
{
    int force = 0;
    if (argc >= 2 && strcmp(argv[1], "init") == 0) {
        for (int i = 2; i < argc; i++) {
            if (strcmp(argv[i], "--force") == 0) {
                force = 1;
            } else {
                fprintf(stderr, "sandboxctl: ca init: unknown argument '%s'\n", argv[i]);
                return 2;
            }
        }
        return ca_init(o->confdir, force);
    }
    fprintf(stderr, "usage: sandboxctl [-c DIR] ca init [--force]\n");
    return 2;
}
