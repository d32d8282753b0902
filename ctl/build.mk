# ctl/: sandboxctl.  Every ctl/*.c is linked in (one file per subcommand, see ctl/ctl.h), so a new
# cmd_NAME.c needs no edit here.  Other parts append in their own build.mk:
#   CTL_ARCHIVES += $(B)/libpsnft.a      (archives; also prerequisites of the link)
#   CTL_LIBS     += $(call pc,libnftables)
# Both are expanded late (secondary expansion / recipe), so the order of build.mk files is free.
CTL_SRCS := $(sort $(wildcard ctl/*.c))
CTL_OBJS := $(patsubst %.c,$(B)/%.o,$(CTL_SRCS))
CTL_ARCHIVES ?=
CTL_LIBS ?=
CTL_LIBS += $(call pc,libcrypto)   # ctl/cmd_ca.c (sandboxctl ca init)

.SECONDEXPANSION:
$(B)/sandboxctl: $(CTL_OBJS) $$(CTL_ARCHIVES) $(B)/libpscommon.a
	$(CC) $(LDFLAGS) -o $@ $(CTL_OBJS) $(CTL_ARCHIVES) $(B)/libpscommon.a $(CTL_LIBS) $(COMMON_LIBS)

BINS += $(B)/sandboxctl

# tests/unit/test_pam_stack.c: the doctor's model of libpam's controls and stack walk
TEST_OBJS_test_pam_stack := $(B)/ctl/pam_stack.o
FUZZ_OBJS_fuzz_pam_control := $(B)/ctl/pam_stack.o
