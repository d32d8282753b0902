/* libFuzzer harness for the config language: the first byte picks the file kind (sandbox.conf,
 * a profile, an inference backend), the rest is the file.  Every parsed profile is also run
 * through the matcher and resolution, so that whatever the parser accepts is safe to use. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "common/config.h"
#include "common/policy.h"
#include "common/resolve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    enum ps_file_kind kind = (enum ps_file_kind)(data[0] % 3);
    struct ps_config *cfg = ps_config_new_empty("/fuzz");
    struct ps_diags d = { 0 };
    int rc = ps_config_parse_buffer(cfg, kind, "fuzz.conf", (const char *)data + 1, size - 1, &d);
    /* the contract: failure <=> at least one diagnostic */
    if ((rc < 0) != (d.n > 0))
        __builtin_trap();
    for (size_t i = 0; i < d.n; i++)
        if (!d.v[i].msg || !d.v[i].file)
            __builtin_trap();
    if (kind == PS_FILE_PROFILE && rc == 0) {
        const struct ps_profile *p = &cfg->profiles[0];
        struct ps_decision dec;
        static const char *hosts[] = { "github.com", "a.example.com", "10.20.1.1", "2001:db8::1",
                                       "inference.local", "EXAMPLE.com." };
        for (size_t h = 0; h < sizeof hosts / sizeof hosts[0]; h++) {
            ps_policy_decide(p, hosts[h], 443, NULL, &dec);
            ps_policy_decide(p, hosts[h], 22, "/usr/bin/ssh", &dec);
            (void)ps_policy_name_allowed(p, hosts[h]);
        }
        struct ps_identity id = { .name = "fuzz", .uid = 59000, .n_gids = 0 };
        (void)ps_resolve_profile(cfg, &id, NULL, 0);
    }
    ps_diags_free(&d);
    ps_config_free(cfg);
    return 0;
}
