# tests/: every tests/unit/test_NAME.c is one cmocka executable $(B)/tests/test_NAME.  A part that
# owns a test declares, in its own build.mk, what else the test links:
#   TEST_OBJS_test_NAME := $(B)/proxyd/foo.o ...     (extra objects, also prerequisites)
#   TEST_LIBS_test_NAME := $(call pc,libnftables)    (extra libraries)
# Both are expanded late, so build.mk order does not matter.
UNIT_TEST_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_TESTS += $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_TEST_SRCS))

.SECONDEXPANSION:
$(B)/tests/test_%: $(B)/tests/unit/test_%.o $$(TEST_OBJS_test_$$*) $(B)/libpscommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(TEST_OBJS_test_$*) $(B)/libpscommon.a \
	  $(call pc,cmocka) $(TEST_LIBS_test_$*) $(COMMON_LIBS)

# The worlds' /dev/log (tests/lib/world.sh): syslog datagrams appended to a file, one per line.
$(B)/tests/syslog_catcher: $(B)/tests/lib/syslog_catcher.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^

BINS += $(B)/tests/syslog_catcher
