# proxyd/dns.mk: policy DNS, synthetic addresses and the upstream resolver (owned by the DNS part;
# included from proxyd/build.mk).  sandbox-proxyd links $(PD_DNS_OBJS) and $(PD_DNS_LIBS).
PD_DNS_SRCS := proxyd/dns_msg.c proxyd/dns_ident.c proxyd/dns_server.c proxyd/synth.c proxyd/resolver.c \
    proxyd/uid_quota.c
PD_DNS_OBJS := $(patsubst %.c,$(B)/%.o,$(PD_DNS_SRCS))
PD_DNS_LIBS := $(call pc,libcares)
PROXYD_LIBS += $(PD_DNS_LIBS)

TEST_OBJS_test_dns_msg := $(B)/proxyd/dns_msg.o
TEST_OBJS_test_synth := $(B)/proxyd/synth.o
TEST_OBJS_test_uid_quota := $(B)/proxyd/uid_quota.o
FUZZ_OBJS_fuzz_dns := $(B)/proxyd/dns_msg.o
# The resolver on the real loop, against an in-process responder.
TEST_OBJS_test_dns_resolver := $(B)/proxyd/resolver.o $(B)/proxyd/loop.o $(B)/proxyd/dns_msg.o
TEST_LIBS_test_dns_resolver := $(PD_DNS_LIBS)
TEST_OBJS_test_dns_ident := $(B)/proxyd/dns_ident.o
