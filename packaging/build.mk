# packaging/: `make install` (honours DESTDIR, PREFIX, SYSCONFDIR, SBINDIR, MANDIR, UNITDIR,
# PAM_MODDIR).  Everything installed is root-owned when make runs as root; directories 0755,
# programs 0755, everything else 0644 (Debian installs PAM modules 0644 too).
#
# Example configuration is installed so that it sandboxes NOBODY until the admin acts:
#   profiles/sandbox.conf        -> $(SYSCONFDIR)/pam_sandbox/sandbox.conf   (global settings only;
#                                   they match no account)
#   profiles/profiles/NAME.conf  -> $(SYSCONFDIR)/pam_sandbox/profiles/NAME.conf.example
#   profiles/inference.d/NAME.conf -> $(SYSCONFDIR)/pam_sandbox/inference.d/NAME.conf.example
# (profiles/ mirrors the layout of /etc/pam_sandbox.)
# The loader reads only *.conf, so an example is inert until the admin copies it to NAME.conf: an
# example with "Group=sandboxed" must not start confining an existing group on the day the package
# is installed.  Files under $(SYSCONFDIR) are installed only when absent (an admin's edits always
# win); the pristine copies also go to $(DATADIR)/examples/, which is always refreshed.

INSTALL     ?= install
# Ownership only when we can set it (a DESTDIR build by a normal user still works).
INSTALL_OWN := $(if $(filter 0,$(shell id -u)),-o root -g root,)
INSTALL_DIR := $(INSTALL) -d -m 0755 $(INSTALL_OWN)
INSTALL_BIN := $(INSTALL) -m 0755 $(INSTALL_OWN)
INSTALL_DAT := $(INSTALL) -m 0644 $(INSTALL_OWN)

PS_CONFDIR_INST := $(DESTDIR)$(SYSCONFDIR)/pam_sandbox
PS_MAN_PAGES    := $(sort $(wildcard man/*.[0-9]))
PS_UNITS        := $(sort $(wildcard packaging/*.service packaging/*.socket packaging/*.timer))
PS_EX_GLOBAL    := $(wildcard profiles/sandbox.conf)
PS_EX_PROFILES  := $(sort $(wildcard profiles/profiles/*.conf))
PS_EX_BACKENDS  := $(sort $(wildcard profiles/inference.d/*.conf))

.PHONY: install-module install-sbin install-man install-units install-pamconfig install-config \
        install-logrotate

# Programs exist only once their part has landed: take what BINS lists (expanded late, so the
# order of the build.mk files does not matter).
.SECONDEXPANSION:
install-module: $$(filter $(B)/pam_sandbox.so,$$(BINS))
	$(INSTALL_DIR) $(DESTDIR)$(PAM_MODDIR)
	$(if $^,$(INSTALL_DAT) $^ $(DESTDIR)$(PAM_MODDIR)/pam_sandbox.so)

install-sbin: $$(filter $(B)/sandboxctl $(B)/sandbox-proxyd,$$(BINS))
	$(INSTALL_DIR) $(DESTDIR)$(SBINDIR)
	$(if $^,$(INSTALL_BIN) $^ $(DESTDIR)$(SBINDIR)/)

# man/NAME.N -> $(MANDIR)/manN/NAME.N
install-man:
	@set -e; for p in $(PS_MAN_PAGES); do \
	  s=$${p##*.}; echo "install $$p -> $(DESTDIR)$(MANDIR)/man$$s/"; \
	  $(INSTALL_DIR) $(DESTDIR)$(MANDIR)/man$$s; \
	  $(INSTALL_DAT) $$p $(DESTDIR)$(MANDIR)/man$$s/; done

# The units name the programs by their Debian paths; follow SBINDIR (PREFIX=/usr/local).
install-units:
	$(INSTALL_DIR) $(DESTDIR)$(UNITDIR)
	@mkdir -p $(B)/packaging
	@set -e; for u in $(PS_UNITS); do n=$${u##*/}; \
	  sed 's|/usr/sbin/sandbox|$(SBINDIR)/sandbox|g' $$u > $(B)/packaging/$$n; \
	  echo "install $$u -> $(DESTDIR)$(UNITDIR)/$$n"; \
	  $(INSTALL_DAT) $(B)/packaging/$$n $(DESTDIR)$(UNITDIR)/$$n; done
	$(INSTALL_DIR) $(DESTDIR)$(UNITDIR)/nftables.service.d
	@sed 's|/usr/sbin/sandbox|$(SBINDIR)/sandbox|g' packaging/nftables.service.d/pam-sandbox.conf \
	  > $(B)/packaging/nftables-pam-sandbox.conf
	@echo "install packaging/nftables.service.d/pam-sandbox.conf -> $(DESTDIR)$(UNITDIR)/nftables.service.d/"
	@$(INSTALL_DAT) $(B)/packaging/nftables-pam-sandbox.conf $(DESTDIR)$(UNITDIR)/nftables.service.d/pam-sandbox.conf

install-pamconfig:
	$(INSTALL_DIR) $(DESTDIR)$(PREFIX)/share/pam-configs
	$(if $(wildcard packaging/pam-configs/pam_sandbox),$(INSTALL_DAT) packaging/pam-configs/pam_sandbox $(DESTDIR)$(PREFIX)/share/pam-configs/pam_sandbox)

# install_keep SRC DST: install only when DST is absent, and say so either way.
ps_install_keep = if [ -e $(2) ] || [ -L $(2) ]; then echo "keep $(2) (exists; new version in $(DATADIR)/examples)"; \
                  else echo "install $(1) -> $(2)"; $(INSTALL_DAT) $(1) $(2); fi

install-config:
	$(INSTALL_DIR) $(PS_CONFDIR_INST) $(PS_CONFDIR_INST)/profiles $(PS_CONFDIR_INST)/inference.d
	$(INSTALL_DIR) $(DESTDIR)$(DATADIR)/examples $(DESTDIR)$(DATADIR)/examples/profiles \
	  $(DESTDIR)$(DATADIR)/examples/inference.d
	@set -e; \
	for f in $(PS_EX_GLOBAL); do \
	  $(INSTALL_DAT) $$f $(DESTDIR)$(DATADIR)/examples/sandbox.conf; \
	  $(call ps_install_keep,$$f,$(PS_CONFDIR_INST)/sandbox.conf); done; \
	for f in $(PS_EX_PROFILES); do n=$${f##*/}; \
	  $(INSTALL_DAT) $$f $(DESTDIR)$(DATADIR)/examples/profiles/$$n; \
	  $(call ps_install_keep,$$f,$(PS_CONFDIR_INST)/profiles/$$n.example); done; \
	for f in $(PS_EX_BACKENDS); do n=$${f##*/}; \
	  $(INSTALL_DAT) $$f $(DESTDIR)$(DATADIR)/examples/inference.d/$$n; \
	  $(call ps_install_keep,$$f,$(PS_CONFDIR_INST)/inference.d/$$n.example); done

# The decision log's rotation (DecisionLog='s default path); a conffile like the config above.
install-logrotate:
	$(INSTALL_DIR) $(DESTDIR)$(SYSCONFDIR)/logrotate.d
	@$(call ps_install_keep,packaging/logrotate/pam-sandbox,$(DESTDIR)$(SYSCONFDIR)/logrotate.d/pam-sandbox)

INSTALL_RULES += install-module install-sbin install-man install-units install-pamconfig install-config \
                 install-logrotate

# sandboxctl doctor checks that the module a PAM stack names exists where libpam looks for it.
$(B)/ctl/doctor_pam.o: CPPFLAGS += -DPS_PAM_MODDIR='"$(PAM_MODDIR)"'
