# netfilter/: $(B)/libpsnft.a, the nftables side (render, atomic load, UID set, status), linked
# into pam_sandbox.so and sandboxctl (objects are -fPIC via CFLAGS), plus the test helpers of the
# egress integration tests.  Users of the archive link $(NFT_LIBS) after it.
NFT_SRCS := $(sort $(wildcard netfilter/*.c))
NFT_OBJS := $(patsubst %.c,$(B)/%.o,$(NFT_SRCS))
NFT_LIBS := $(call pc,libnftables)

$(B)/libpsnft.a: $(NFT_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	$(AR) rcs $@ $^

all: $(B)/libpsnft.a

CTL_ARCHIVES += $(B)/libpsnft.a
CTL_LIBS += $(NFT_LIBS)

TEST_OBJS_test_nft_render := $(B)/libpsnft.a
TEST_LIBS_test_nft_render := $(NFT_LIBS)

# Test helpers (tests/lib/nft_*.c): the transparent-port listener that reports SO_ORIGINAL_DST and
# the sock_diag owner, a UDP/TCP/ICMP client, an NFLOG reader, and a caller of ps_nft_ensure_uid.
$(B)/tests/nft_origdst_listener: $(B)/tests/lib/nft_origdst_listener.o $(B)/libpscommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(COMMON_LIBS)

$(B)/tests/nft_nflog_reader: $(B)/tests/lib/nft_nflog_reader.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^

$(B)/tests/nft_ensure_uid: $(B)/tests/lib/nft_ensure_uid.o $(B)/libpsnft.a $(B)/libpscommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(NFT_LIBS) $(COMMON_LIBS)

BINS += $(B)/tests/nft_origdst_listener $(B)/tests/nft_nflog_reader $(B)/tests/nft_ensure_uid
