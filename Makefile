# pam_sandbox top-level build.  Each part keeps its own rules in DIR/build.mk, included below, so
# that parts can grow without editing this file.  Conventions a build.mk follows:
#   BINS         += programs and the module, under $(B)/
#   UNIT_TESTS   += cmocka test executables, under $(B)/tests/ (run by `make check-unit`)
#   FUZZERS      += libFuzzer harnesses, under $(B)/fuzz/ (built only with FUZZ=1)
#   INSTALL_RULES+= names of phony install targets
#   CLEAN_EXTRA  += extra things to remove
# Variables:  SAN=1  build with ASan+UBSan into build-san/;  FUZZ=1 clang+libFuzzer into build-fuzz/.

PREFIX     ?= /usr
SYSCONFDIR ?= /etc
DESTDIR    ?=
PKG_CONFIG ?= pkg-config
PAM_MODDIR ?= $(shell $(PKG_CONFIG) --variable=libdir pam 2>/dev/null || echo /usr/lib/x86_64-linux-gnu)/security
BINDIR     ?= $(PREFIX)/bin
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
DATADIR    ?= $(PREFIX)/share/pam_sandbox
UNITDIR    ?= /lib/systemd/system

CC ?= gcc
ifeq ($(FUZZ),1)
CC := clang
B  ?= build-fuzz
SANFLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -DPS_FUZZING
else ifeq ($(TSAN),1)
B  ?= build-tsan
SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
else ifeq ($(SAN),1)
B  ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
else
B  ?= build
SANFLAGS :=
endif

WARN     := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-unused-parameter
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 $(WARN) -fPIC -D_GNU_SOURCE -I. $(SANFLAGS)
CPPFLAGS += -DPS_SYSCONFDIR='"$(SYSCONFDIR)"'
LDFLAGS  += $(SANFLAGS)

pc = $(shell $(PKG_CONFIG) --libs $(1) 2>/dev/null)
pcflags = $(shell $(PKG_CONFIG) --cflags $(1) 2>/dev/null)

BINS :=
UNIT_TESTS :=
FUZZERS :=
INSTALL_RULES :=
CLEAN_EXTRA :=

.PHONY: all check check-unit check-integration check-asan check-tsan fuzz fuzz-run bench demo install clean cppcheck
all:

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

include $(sort $(wildcard */build.mk))

all: $(BINS)

check: all check-unit check-integration

check-unit: $(UNIT_TESTS)
	@set -e; for t in $(UNIT_TESTS); do echo "== $$t"; $$t; done

# Integration tests need root and namespaces; each script says SKIP with a reason when it cannot run.
check-integration: all
	PS_BUILD=$(abspath $(B)) tests/integration/run

# Unit tests and the proxyd integration tests under ASan+UBSan.
check-asan:
	$(MAKE) SAN=1 check-unit
	$(MAKE) SAN=1 all
	PS_BUILD=$(abspath build-san) PS_SAN=1 tests/integration/run

# sandbox-proxyd is the one threaded program (its relay loops, proxyd/relay.c): its tests again
# with that binary under ThreadSanitizer; everything else from the plain build.
check-tsan: all
	$(MAKE) TSAN=1 build-tsan/sandbox-proxyd
	PS_PROXYD=$(abspath build-tsan/sandbox-proxyd) tests/integration/run $(wildcard tests/integration/t_proxy_*.sh)

FUZZ_SECONDS ?= 30
fuzz:
	$(MAKE) FUZZ=1 fuzz-run

# Runs inside the FUZZ=1 make, so $(FUZZERS) are the clang/libFuzzer builds under build-fuzz/.
fuzz-run: $(FUZZERS)
	@set -e; for f in $(FUZZERS); do n=$$(basename $$f); w=$(B)/fuzz-work/$$n; \
	  mkdir -p $$w/corpus fuzz/corpus/$$n; \
	  echo "== $$n for $(FUZZ_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
	      -artifact_prefix=$$w/ $$w/corpus fuzz/corpus/$$n >$$w/log 2>&1 || { tail -n 40 $$w/log; exit 1; }; \
	  tail -n 1 $$w/log; done

bench: all
	PS_BUILD=$(abspath $(B)) bench/run

demo:
	scripts/demo

cppcheck:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --inline-suppr --suppress=missingIncludeSystem -I. -D_GNU_SOURCE \
	  common pam_sandbox netfilter proxyd ctl

install: all $(INSTALL_RULES)

clean:
	rm -rf build build-san build-fuzz $(CLEAN_EXTRA)

-include $(shell find $(B) -name '*.d' 2>/dev/null)
