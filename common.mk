# Shared build rules: compilers, flags and pattern rules.
CC	?= gcc
CLANG	?= clang
BPFTOOL	?= bpftool
ARCH_INC := /usr/include/$(shell dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)

BUILD	:= build
BIN	:= bin

CFLAGS	?= -O2 -g
CFLAGS	+= -Wall -Wextra -Werror -std=gnu11 -D_GNU_SOURCE \
	   -I. -Imaps -Ilib -I$(BUILD)/include
BPF_CFLAGS := -g -O2 -target bpf -Wall -Werror -D__TARGET_ARCH_x86 \
	   -I. -Imaps -Ibpf -I$(ARCH_INC)
LDLIBS	:= -lxdp -lbpf -lelf -lz -lmicrohttpd -ljson-c -lcurl \
	   -lzookeeper_mt -lpthread -lm
TEST_LDLIBS := -lcmocka

.DELETE_ON_ERROR:
.SECONDARY:

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h) $(wildcard maps/*.h)
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/include/%.skel.h: $(BUILD)/bpf/%.bpf.o
	@mkdir -p $(@D)
	$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@

$(BUILD)/obj/%.o: %.c $(SKELS) $(wildcard maps/*.h) $(wildcard */*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@
