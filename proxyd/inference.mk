# proxyd/inference.mk: inference.local interception (issue 5), included from proxyd/build.mk.
# sandbox-proxyd links $(PD_INFERENCE_OBJS) and $(PROXYD_LIBS).
PD_INFERENCE_SRCS := $(sort $(wildcard proxyd/inference_*.c))
PD_INFERENCE_OBJS := $(patsubst %.c,$(B)/%.o,$(PD_INFERENCE_SRCS))
PROXYD_LIBS += $(call pc,libssl libcrypto) $(call pc,json-c)

# The pure parts, for unit tests and fuzzers (no loop, no OpenSSL).
PD_INFERENCE_PURE := $(B)/proxyd/inference_filter.o $(B)/proxyd/inference_json.o \
                     $(B)/proxyd/inference_sse.o $(B)/proxyd/inference_rate.o \
                     $(B)/proxyd/inference_upstream.o $(B)/proxyd/http_parse.o \
                     $(B)/proxyd/inference_budget.o
TEST_OBJS_test_inference_filter := $(PD_INFERENCE_PURE)
TEST_LIBS_test_inference_filter := $(call pc,json-c)
TEST_OBJS_test_inference_sse := $(PD_INFERENCE_PURE)
TEST_OBJS_test_inference_budget := $(PD_INFERENCE_PURE)
TEST_LIBS_test_inference_budget := $(call pc,json-c)
TEST_LIBS_test_inference_sse := $(call pc,json-c)
FUZZ_OBJS_fuzz_inference_json := $(PD_INFERENCE_PURE)
FUZZ_LIBS_fuzz_inference_json := $(call pc,json-c)
FUZZ_OBJS_fuzz_sse := $(PD_INFERENCE_PURE)
FUZZ_LIBS_fuzz_sse := $(call pc,json-c)
