# pam_sandbox/: $(B)/pam_sandbox.so (only pam_sm_open_session and pam_sm_close_session exported,
# libpscommon and libpsnft linked in statically and kept private), the seccomp unit test's
# objects, and the programs the module's integration tests and benchmark run.
PAM_SANDBOX_OBJS := $(addprefix $(B)/pam_sandbox/,module.o env.o limits.o caps.o seccomp_filter.o \
                      broken_config.o)

# Until netfilter/ lands, a stub whose ensure_uid refuses every login (see nft_pending.c).
ifeq ($(wildcard netfilter/build.mk),)
PAM_SANDBOX_OBJS += $(B)/pam_sandbox/nft_pending.o
PAM_SANDBOX_NFT :=
PAM_SANDBOX_NFT_LIBS :=
ifeq ($(PS_NFT_PENDING_ALLOW),1)
$(B)/pam_sandbox/nft_pending.o: CPPFLAGS += -DPS_NFT_PENDING_ALLOW
endif
else
PAM_SANDBOX_NFT := $(B)/libpsnft.a
PAM_SANDBOX_NFT_LIBS := $(call pc,libnftables)
endif

# -z defs: an unresolved symbol must fail the link, not the first login (not with sanitizers,
# whose runtime the loading program provides).
PAM_SANDBOX_ZDEFS := $(if $(SANFLAGS),,-Wl,-z,defs)

$(B)/pam_sandbox.so: $(PAM_SANDBOX_OBJS) $(PAM_SANDBOX_NFT) $(B)/libpscommon.a pam_sandbox/pam_sandbox.map
	$(CC) $(LDFLAGS) -shared -Wl,--version-script=pam_sandbox/pam_sandbox.map $(PAM_SANDBOX_ZDEFS) \
	  -Wl,-z,relro -Wl,-z,now -o $@ $(PAM_SANDBOX_OBJS) $(PAM_SANDBOX_NFT) $(B)/libpscommon.a \
	  $(PAM_SANDBOX_NFT_LIBS) $(call pc,pam) -lpam $(COMMON_LIBS)

# The probe run inside sessions by the integration tests (pthread for the clone3 fallback check).
$(B)/tests/sandbox_probe: $(B)/tests/lib/sandbox_probe.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -pthread -o $@ $<

# A minimal PAM application with the lifecycle of su/cron (tests/lib/sandbox_pam_run.c).
$(B)/tests/sandbox_pam_run: $(B)/tests/lib/sandbox_pam_run.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< -lpam

# Links the real nftables step when netfilter/ is in the tree, the pending stub otherwise.
$(B)/bench/pam_bench: $(B)/bench/pam_bench.o $(B)/pam_sandbox/seccomp_filter.o \
                      $(filter %/nft_pending.o,$(PAM_SANDBOX_OBJS)) $(PAM_SANDBOX_NFT) $(B)/libpscommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lpam $(PAM_SANDBOX_NFT_LIBS) $(COMMON_LIBS)

BINS += $(B)/pam_sandbox.so $(B)/tests/sandbox_probe $(B)/tests/sandbox_pam_run $(B)/bench/pam_bench

TEST_OBJS_test_seccomp := $(B)/pam_sandbox/seccomp_filter.o
