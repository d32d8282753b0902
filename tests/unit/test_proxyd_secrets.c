/* The hand-over of root-only files from proxyd's helper (proxyd/secrets.c): the wire form round
 * trips, and every malformed message is rejected whole; lookups fall back to the file system. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxyd/secrets.h"

static unsigned char wire[80000];

static struct pd_secrets two(void)
{
    struct pd_secrets s = { 0 };
    char err[256];
    char path[] = "/tmp/ps-secret-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "sk-one\n", 7), 7);
    close(fd);
    assert_int_equal(pd_secrets_add_file(&s, path, err, sizeof err), 0);
    assert_int_equal(pd_secrets_add_file(&s, path, err, sizeof err), 0);    /* no duplicate */
    assert_int_equal(pd_secrets_add_file(&s, "/nonexistent/ps-secret", err, sizeof err), 0);
    unlink(path);
    assert_int_equal(s.n, 1);
    return s;
}

static void round_trip(void **state)
{
    (void)state;
    struct pd_secrets s = two(), back;
    size_t n = pd_secrets_encode(&s, wire, sizeof wire);
    assert_true(n > 4);
    assert_int_equal(pd_secrets_decode(&back, wire, n), 0);
    assert_int_equal(back.n, 1);
    assert_string_equal(back.v[0].path, s.v[0].path);
    assert_int_equal(back.v[0].len, 7);
    assert_memory_equal(back.v[0].data, "sk-one\n", 7);
    unsigned char *d;
    size_t len;
    char err[256];
    assert_int_equal(pd_secret_read(&back, s.v[0].path, &d, &len, err, sizeof err), 0);
    assert_int_equal(len, 7);
    assert_string_equal((char *)d, "sk-one\n");                           /* NUL-terminated */
    pd_secret_wipe(d, len);
    /* the file is gone: only the handed-over copy knows it */
    assert_int_equal(pd_secret_read(NULL, s.v[0].path, &d, &len, err, sizeof err), -1);
    assert_non_null(strstr(err, s.v[0].path));
    pd_secrets_free(&back);
    pd_secrets_free(&s);
}

static void every_truncation_rejected(void **state)
{
    (void)state;
    struct pd_secrets s = two(), back;
    size_t n = pd_secrets_encode(&s, wire, sizeof wire);
    for (size_t cut = 0; cut < n; cut++)
        assert_int_equal(pd_secrets_decode(&back, wire, cut), -1);
    wire[n] = 0;
    assert_int_equal(pd_secrets_decode(&back, wire, n + 1), -1);           /* left over */
    assert_int_equal(pd_secrets_encode(&s, wire, n - 1), 0);               /* no room */
    pd_secrets_free(&s);
}

static void bad_fields_rejected(void **state)
{
    (void)state;
    struct pd_secrets s = two(), back;
    size_t n = pd_secrets_encode(&s, wire, sizeof wire);
    unsigned char m[200];
    memcpy(m, wire, n);
    m[6] = 0;                                                              /* NUL in the path */
    assert_int_equal(pd_secrets_decode(&back, m, n), -1);
    memcpy(m, wire, n);
    m[0] = 0xff;                                                           /* count */
    assert_int_equal(pd_secrets_decode(&back, m, n), -1);
    memcpy(m, wire, n);
    m[4] = 0; m[5] = 0;                                                    /* empty path */
    assert_int_equal(pd_secrets_decode(&back, m, n), -1);
    /* a declared length over the limit, with the bytes present */
    unsigned char big[4 + 2 + 1 + 4 + PD_SECRET_FILE_MAX + 1];
    memset(big, 'k', sizeof big);
    big[0] = 1; big[1] = big[2] = big[3] = 0;
    big[4] = 1; big[5] = 0; big[6] = '/';
    uint32_t dl = PD_SECRET_FILE_MAX + 1;
    big[7] = (unsigned char)dl; big[8] = (unsigned char)(dl >> 8); big[9] = (unsigned char)(dl >> 16); big[10] = 0;
    assert_int_equal(pd_secrets_decode(&back, big, sizeof big), -1);
    pd_secrets_free(&s);
}

static void oversize_file_refused(void **state)
{
    (void)state;
    char path[] = "/tmp/ps-secret-big-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static char buf[PD_SECRET_FILE_MAX + 1];
    memset(buf, 'k', sizeof buf);
    assert_int_equal(write(fd, buf, sizeof buf), (ssize_t)sizeof buf);
    close(fd);
    struct pd_secrets s = { 0 };
    char err[256];
    assert_int_equal(pd_secrets_add_file(&s, path, err, sizeof err), -1);
    assert_non_null(strstr(err, "longer than"));
    assert_int_equal(s.n, 0);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(every_truncation_rejected),
        cmocka_unit_test(bad_fields_rejected),
        cmocka_unit_test(oversize_file_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
