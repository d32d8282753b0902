# bench/: the load generator used by bench/proxy.sh.  Not part of `all` (nothing installs it);
# `make bench` and bench/run build it.
BENCH_TOOLS := $(B)/bench/tunload

$(B)/bench/tunload: $(B)/bench/lib/tunload.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^

bench-tools: $(BENCH_TOOLS)
bench: $(BENCH_TOOLS)
.PHONY: bench-tools
