# xvpc: top-level build. `make deps` once on a fresh Debian 12, then
# `make check` (all tests), `make demo`, `make bench-<area>`.
BPF_SRCS   := $(wildcard bpf/*.bpf.c)
SKELS      := $(patsubst bpf/%.bpf.c,build/include/%.skel.h,$(BPF_SRCS))

include common.mk

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

# Libraries: everything but the mains, so tests and benches link the same code.
LIB_OBJS   := $(call obj,$(wildcard lib/*.c) $(wildcard lb/*.c))
AGENT_OBJS := $(call obj,$(filter-out agent/main.c,$(wildcard agent/*.c)))
CTRL_OBJS  := $(call obj,$(filter-out controller/main.c,$(wildcard controller/*.c)))
CLI_OBJS   := $(call obj,$(filter-out cli/main.c,$(wildcard cli/*.c)))
ARCHIVES   := $(BUILD)/libagent.a $(BUILD)/libctrl.a $(BUILD)/libcli.a \
	      $(BUILD)/libxvpc.a
LINK_ARCHIVES := -Wl,--start-group $(ARCHIVES) -Wl,--end-group

PROGS      := $(BIN)/xvpc-agent $(BIN)/xvpc-controller $(BIN)/xvpcctl
UNIT_TESTS := $(patsubst tests/%.c,$(BIN)/tests/%,$(wildcard tests/test_*.c))
SELFTESTS  := $(patsubst selftests/%.c,$(BIN)/selftests/%,$(wildcard selftests/*.c))
BENCHES    := $(patsubst bench/%.c,$(BIN)/bench/%,$(wildcard bench/*.c))

.PHONY: all deps check check-unit check-bpf check-e2e demo clean format \
	format-check bench-datapath bench-lb bench-agent bench-control bench-learn

all: $(SKELS) $(PROGS) $(UNIT_TESTS) $(SELFTESTS) $(BENCHES)

$(BUILD)/libxvpc.a: $(LIB_OBJS)
$(BUILD)/libagent.a: $(AGENT_OBJS)
$(BUILD)/libctrl.a: $(CTRL_OBJS)
# The API serves docs/openapi.json, embedded by controller/openapi.c.
$(call obj,controller/openapi.c): docs/openapi.json
$(BUILD)/libcli.a: $(CLI_OBJS)
# The ZooKeeper test runs the store conformance cases of the embedded one.
$(call obj,tests/test_ctrl_zk.c): tests/test_ctrl_store.c
$(ARCHIVES):
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^ $(if $^,,$(BUILD)/obj/empty.o)

$(BUILD)/obj/empty.o:
	@mkdir -p $(@D)
	echo 'extern int xvpc_empty_unit; int xvpc_empty_unit;' | $(CC) -x c -c - -o $@

$(ARCHIVES): | $(BUILD)/obj/empty.o

$(BIN)/xvpc-agent: $(call obj,agent/main.c) $(ARCHIVES)
$(BIN)/xvpc-controller: $(call obj,controller/main.c) $(ARCHIVES)
$(BIN)/xvpcctl: $(call obj,cli/main.c) $(ARCHIVES)
# The controller runs a thread per connection that each allocate per
# request: jemalloc's per-thread caches (docs/agent.md "Benchmark").
$(BIN)/xvpc-controller: LDLIBS += -ljemalloc
# bench_control runs a thousand agents in one process: on glibc's arenas
# (16 on two cores) they would contend as agents, one process each, do not.
$(BIN)/bench/bench_control: LDLIBS += -ljemalloc
$(PROGS):
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(LINK_ARCHIVES) $(LDLIBS)

$(BIN)/tests/%: $(call obj,tests/%.c) $(ARCHIVES)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(LINK_ARCHIVES) $(LDLIBS) $(TEST_LDLIBS)

$(BIN)/selftests/%: $(call obj,selftests/%.c) $(ARCHIVES)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(LINK_ARCHIVES) $(LDLIBS) $(TEST_LDLIBS)

$(BIN)/bench/%: $(call obj,bench/%.c) $(ARCHIVES)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(LINK_ARCHIVES) $(LDLIBS)

deps:
	./deploy/deps.sh

check: deps
	$(MAKE) all
	./tests/check.sh

check-unit: all
	./tests/check.sh unit
check-bpf: all
	./tests/check.sh bpf
check-e2e: all
	./tests/check.sh e2e

demo: deps
	$(MAKE) all
	./deploy/demo.sh

bench-datapath bench-lb bench-agent bench-control bench-learn: bench-%: all
	./bench/run.sh $*

C_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(C_FILES)
format-check:
	clang-format --dry-run -Werror $(C_FILES)

clean:
	rm -rf $(BUILD) $(BIN)
