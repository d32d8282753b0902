# proxyd/: sandbox-proxyd.  Every proxyd/*.c present is linked in (wildcard), so the DNS part
# (dns_*, synth, resolver) and the inference part (inference_*) link as soon as their files exist;
# until then proxyd/weak_fallbacks.c stands in for them and fails closed.  Other parts append to
# PROXYD_LIBS in their own proxyd/*.mk fragment (included below).
PROXYD_SRCS := $(sort $(wildcard proxyd/*.c))
PROXYD_OBJS := $(patsubst %.c,$(B)/%.o,$(PROXYD_SRCS))
PROXYD_LIBS ?=
PROXYD_LIBS += $(call pc,libcares) $(call pc,openssl) $(call pc,json-c)

# Fragments of the other proxyd parts (proxyd/dns.mk, proxyd/inference.mk, ...).
-include $(filter-out proxyd/build.mk,$(sort $(wildcard proxyd/*.mk)))
PROXYD_LIBS += $(PD_DNS_LIBS) -pthread   # relay loops (relay.c)

# Until common/sockdiag.c lands, weak_fallbacks.c provides a ps_sockdiag_lookup that identifies
# nobody (every connection denied).  A weak definition would stop the linker from pulling the real
# one out of libpscommon.a, so this one is compiled in only while the real one is absent; the flag
# file makes the object rebuild when that changes.
PD_FALLBACK_FLAGS := $(if $(wildcard common/sockdiag.c),,-DPD_FALLBACK_SOCKDIAG)
$(B)/proxyd/fallback.flags: FORCE_PD_FLAGS
	@mkdir -p $(dir $@)
	@echo '$(PD_FALLBACK_FLAGS)' | cmp -s - $@ || echo '$(PD_FALLBACK_FLAGS)' > $@
.PHONY: FORCE_PD_FLAGS
$(B)/proxyd/weak_fallbacks.o: CPPFLAGS += $(PD_FALLBACK_FLAGS)
$(B)/proxyd/weak_fallbacks.o: $(B)/proxyd/fallback.flags

.SECONDEXPANSION:
$(B)/sandbox-proxyd: $(PROXYD_OBJS) $(B)/libpscommon.a
	$(CC) $(LDFLAGS) -o $@ $(PROXYD_OBJS) $(B)/libpscommon.a $(PROXYD_LIBS) $(COMMON_LIBS)

ifneq ($(wildcard proxyd/main.c),)
BINS += $(B)/sandbox-proxyd
endif

# sandboxctl denials (ctl/cmd_denials.c) reads the decision log with json-c.
CTL_LIBS += $(call pc,json-c)

TEST_OBJS_test_http_parse := $(B)/proxyd/http_parse.o
TEST_OBJS_test_proxyd_loop := $(B)/proxyd/loop.o
TEST_OBJS_test_proxyd_declog := $(B)/proxyd/declog.o $(B)/proxyd/declog_limit.o $(B)/proxyd/uid_quota.o \
    $(B)/proxyd/loop.o
TEST_LIBS_test_proxyd_declog := $(call pc,json-c)
FUZZ_OBJS_fuzz_http := $(B)/proxyd/http_parse.o

# The hand-over of root-only files from the privileged helper (proxyd/secrets.c).
TEST_OBJS_test_proxyd_secrets := $(B)/proxyd/secrets.o
TEST_LIBS_test_proxyd_secrets := $(call pc,libcrypto)
FUZZ_OBJS_fuzz_secrets := $(B)/proxyd/secrets.o
FUZZ_LIBS_fuzz_secrets := $(call pc,libcrypto)
