# fuzz/: every fuzz/fuzz_NAME.c is one libFuzzer harness $(B)/fuzz/fuzz_NAME (FUZZ=1 builds only;
# seeds in fuzz/corpus/fuzz_NAME/).  A part that owns a harness declares in its own build.mk:
#   FUZZ_OBJS_fuzz_NAME := $(B)/proxyd/http_parse.o ...   (extra objects, also prerequisites)
#   FUZZ_LIBS_fuzz_NAME := ...                            (extra libraries)
FUZZ_SRCS := $(sort $(wildcard fuzz/fuzz_*.c))
ifeq ($(FUZZ),1)
FUZZERS += $(patsubst fuzz/%.c,$(B)/fuzz/%,$(FUZZ_SRCS))
endif

.SECONDEXPANSION:
$(B)/fuzz/fuzz_%: $(B)/fuzz/fuzz_%.o $$(FUZZ_OBJS_fuzz_$$*) $(B)/libpscommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS_fuzz_$*) $(B)/libpscommon.a \
	  $(FUZZ_LIBS_fuzz_$*) $(COMMON_LIBS)
