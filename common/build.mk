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

# The config language's manual page and the example configuration (installed as examples, never
# into /etc: an admin copies what they want).
.PHONY: install-config-docs
install-config-docs:
	install -D -m 0644 man/sandbox.conf.5 $(DESTDIR)$(MANDIR)/man5/sandbox.conf.5
	install -D -m 0644 profiles/sandbox.conf $(DESTDIR)$(DATADIR)/examples/sandbox.conf
	install -D -m 0644 profiles/profiles/example-dev.conf $(DESTDIR)$(DATADIR)/examples/profiles/example-dev.conf
	install -D -m 0644 profiles/inference.d/example-openai.conf $(DESTDIR)$(DATADIR)/examples/inference.d/example-openai.conf
INSTALL_RULES += install-config-docs
