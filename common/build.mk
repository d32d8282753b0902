# common/: libpscommon.a, linked by every binary, test and fuzzer.  Every common/*.c is in it, so a
# new file (e.g. sockdiag.c) needs no edit here.  Objects are -fPIC (CFLAGS) because
# pam_sandbox.so links the archive.
COMMON_SRCS := $(sort $(wildcard common/*.c))
COMMON_OBJS := $(patsubst %.c,$(B)/%.o,$(COMMON_SRCS))
# Libraries every user of libpscommon.a appends to its link line: syscall names (libseccomp) and
# capability names (libcap) are resolved while parsing.
COMMON_LIBS := $(call pc,libseccomp) $(call pc,libcap)

$(B)/libpscommon.a: $(COMMON_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	$(AR) rcs $@ $^

all: $(B)/libpscommon.a
