# vio: virtio guest drivers (libvio.a) and the x86-64 teaching kernel that boots them.
#
#   make            build build/vio.elf and build/vio.iso (GRUB, multiboot2)
#   make run        build, then boot in QEMU with the default device set (./run-qemu.sh)
#   make test       host unit tests, the cross-built libraries, then QEMU scenarios; ends with
#                   "N passed, N failed"
#   make lib        build/libvio.a, proving the library is freestanding
#   make lib-cross  libvio.a for x86-64, i686, riscv64 and aarch64 (clang and GCC), checked
#   make stack      the deepest interrupt-path stack in the library, per architecture
#   make bench      vio beside a Linux guest beside the limit, BENCH_ROUNDS (3) interleaved
#                   rounds: build/bench/report.md and PNG plots (docs/benchmarks.md);
#                   BENCH_GROUPS=net (or devices, storage, boot, footprint) runs some only
#   make bench-quick the benchmark tool once, vio only, short (make test runs it)
#   make fuzz       build libFuzzer targets (clang) and run each for FUZZ_SECONDS
#   make fuzz-long  the long background run: fast builds, nice 19, totals in build/fuzz/totals.txt
#   make fuzz-corpus  refresh the committed seed corpus (tests/fuzz/corpus/) from local runs
#   make CC=clang   the same kernel built with clang/lld
#   make riscv64    the riscv64 example kernel (examples/riscv64-virt) in build/riscv64-virt
#   make aarch64    the aarch64 example kernel (examples/aarch64-virt) in build/aarch64-virt
#
# Overridable: CC, CROSS (e.g. CROSS=x86_64-elf-), CFLAGS, LDFLAGS, BUILD, QEMU_TIMEOUT, DEBUG=1.
# Set VIO_NO_DEPS=1 to skip the automatic package check (scripts/deps.sh).

.SUFFIXES:
.DELETE_ON_ERROR:
.SECONDARY:

BUILD ?= build
CROSS ?=
ifeq ($(origin CC),default)
CC := $(CROSS)gcc
endif
ifeq ($(origin LD),default)
LD_IS_DEFAULT := 1
endif
HOST_CC ?= cc
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 20

CFLAGS ?= -O2 -g
LDFLAGS ?=

# --- packages -------------------------------------------------------------------------------
NODEPS_GOALS := clean distclean format help compile_commands.json
ifeq ($(VIO_NO_DEPS)$(filter $(NODEPS_GOALS),$(MAKECMDGOALS)),)
DEPS_OK := $(shell scripts/deps.sh >&2 && echo ok)
ifneq ($(DEPS_OK),ok)
$(error scripts/deps.sh failed: see above)
endif
endif

# --- toolchain flavour ----------------------------------------------------------------------
IS_CLANG := $(shell $(CC) --version 2>/dev/null | grep -q clang && echo 1)
ifeq ($(IS_CLANG),1)
TOOLCHAIN := clang
TARGET_FLAGS := --target=x86_64-unknown-none-elf
ifdef LD_IS_DEFAULT
LD := ld.lld
endif
else
TOOLCHAIN := gcc
TARGET_FLAGS :=
ifdef LD_IS_DEFAULT
LD := $(CROSS)ld
endif
endif
# GNU ld >= 2.39 warns about the (intended) RWX-free layout's stack note; lld has no such flag.
LD_EXTRA := $(shell $(LD) --help 2>/dev/null | grep -q -- --no-warn-rwx-segments && echo --no-warn-rwx-segments)
OBJ := $(BUILD)/obj-$(TOOLCHAIN)
NEWLIB := $(BUILD)/cache/newlib-$(TOOLCHAIN)
NEWLIB_LIBC := $(NEWLIB)/x86_64-elf/lib/libc.a

# Flags every target file needs, whatever the user passes in CFLAGS.
override KCFLAGS := $(TARGET_FLAGS) -std=gnu11 -ffreestanding -fno-stack-protector -fno-pic \
	-fno-pie -mno-red-zone -mcmodel=small -fno-omit-frame-pointer -fno-strict-aliasing \
	-Wall -Wextra -Werror -MMD -MP -Iinclude
# DEBUG=1 turns on VIO_ASSERT (include/vio/assert.h) in the library: the kernel panics when
# vio breaks one of its own invariants. The host tests and fuzzers always have it.
ifeq ($(DEBUG),1)
override KCFLAGS += -DVIO_DEBUG
endif
# The library: nothing but the compiler's own freestanding headers and include/vio, and no
# stack frame over FRAME_LIMIT bytes: its interrupt paths run on whatever stack the kernel's
# handler has (4 KiB on xv6). docs/porting.md gives the deepest interrupt-path chain.
# GCC spells the limit as an error in one flag; clang 14 knows only the warning's spelling.
FRAME_LIMIT := 512
FRAME_FLAGS_gcc := -Werror=frame-larger-than=$(FRAME_LIMIT)
FRAME_FLAGS_clang := -Wframe-larger-than=$(FRAME_LIMIT) -Werror=frame-larger-than
override LIBCFLAGS := $(KCFLAGS) -nostdinc -isystem $(shell $(CC) $(TARGET_FLAGS) -print-file-name=include) \
	$(FRAME_FLAGS_$(TOOLCHAIN))
# The kernel: newlib's headers too.
override KERNCFLAGS := $(KCFLAGS) -isystem $(NEWLIB)/x86_64-elf/include
override KLDFLAGS := -nostdlib -static -z max-page-size=0x1000 -z noexecstack -T linker.ld $(LD_EXTRA)

# The library: every transport and driver unless VIO_TRANSPORTS or VIO_DRIVERS say otherwise
# on the command line (the kernel needs them all; `make lib` and `make lib-cross` do not).
VIO_OBJDIR := $(OBJ)
include src/virtio/vio.mk
LIB_SRCS := $(VIO_SRCS:./%=%)
KERN_SRCS := $(sort $(wildcard src/kernel/*.c src/kernel/*.S))
LIB_OBJS := $(VIO_OBJS)
KERN_OBJS := $(patsubst %,$(OBJ)/%.o,$(basename $(KERN_SRCS)))
# The screen console's 8x16 font, converted at build time from a Debian console font
# (console-setup-linux) into build/gen/font.c: never committed (src/kernel/fbcon.c).
FONT_PSF ?= /usr/share/consolefonts/Lat15-VGA16.psf.gz
KERN_OBJS += $(OBJ)/gen/font.o

# Rebuild when the compiler or flags change, and relink when the toolchain or the library's
# selection does (so that 'make CC=clang' followed by 'make' never leaves a clang-built kernel
# in build/vio.elf, nor 'make lib VIO_DRIVERS=blk' a libvio.a with every driver in it).
FLAGS_STAMP := $(OBJ)/flags
LINK_STAMP := $(BUILD)/link-flags
STAMP_TEXT := $(CC) $(CFLAGS) $(KCFLAGS) $(LD) $(LDFLAGS)
LINK_TEXT := $(STAMP_TEXT) transports: $(VIO_TRANSPORTS) drivers: $(VIO_DRIVERS)
$(shell mkdir -p $(OBJ) && \
	{ echo '$(STAMP_TEXT)' | cmp -s - $(FLAGS_STAMP) || echo '$(STAMP_TEXT)' > $(FLAGS_STAMP); } && \
	{ echo '$(LINK_TEXT)' | cmp -s - $(LINK_STAMP) || echo '$(LINK_TEXT)' > $(LINK_STAMP); })

.PHONY: all iso lib lib-cross lib-cross-build stack run test hosttest qemutest bench bench-quick \
	fuzz fuzz-build fuzz-long fuzz-corpus clean distclean format help riscv64 aarch64
all: $(BUILD)/vio.elf $(BUILD)/vio.iso
include src/kernel/net/lwip.mk

$(NEWLIB_LIBC):
	scripts/newlib.sh "$(CC) $(TARGET_FLAGS)" $(NEWLIB)

$(OBJ)/src/kernel/%.o: src/kernel/%.c $(FLAGS_STAMP) | $(NEWLIB_LIBC)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(KERNCFLAGS) -c $< -o $@

$(BUILD)/gen/font.c: scripts/psf2c.py $(FONT_PSF)
	@mkdir -p $(@D)
	python3 scripts/psf2c.py $(FONT_PSF) $@

$(OBJ)/gen/font.o: $(BUILD)/gen/font.c $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(KCFLAGS) -c $< -o $@

$(OBJ)/src/kernel/%.o: src/kernel/%.S $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(KCFLAGS) -c $< -o $@

$(OBJ)/src/%.o: src/%.c $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LIBCFLAGS) -c $< -o $@

$(BUILD)/libvio.a: $(LIB_OBJS) $(LINK_STAMP)
	@rm -f $@
	ar rcs $@ $(LIB_OBJS)

$(BUILD)/vio.elf: $(KERN_OBJS) $(BUILD)/libvio.a $(NEWLIB_LIBC) linker.ld $(LINK_STAMP)
	$(LD) $(KLDFLAGS) $(LDFLAGS) -o $@ $(KERN_OBJS) $(BUILD)/libvio.a $(NEWLIB_LIBC)

$(BUILD)/vio.iso: $(BUILD)/vio.elf scripts/mkiso.sh
	scripts/mkiso.sh $< $@

iso: $(BUILD)/vio.iso
# The library may include only the four freestanding headers and its own (docs/design.md 2);
# -nostdinc above catches libc headers, this catches the rest (the compiler's own extras).
LIB_HEADERS := $(wildcard include/vio/*.h include/vio/spec/*.h src/pci/*.h src/virtio/*.h src/drivers/*.h)
lib: $(BUILD)/libvio.a
	@bad=$$(grep -nE '^[[:space:]]*#[[:space:]]*include' $(LIB_SRCS) $(LIB_HEADERS) | \
		grep -vE '<(stdint|stddef|stdbool|stdarg)\.h>|<vio/[a-z0-9_/]+\.h>|"[a-z0-9_]+\.h"'); \
	if [ -n "$$bad" ]; then echo "lib: not freestanding:"; echo "$$bad"; exit 1; fi
	@echo "lib: $< is freestanding ($(words $(LIB_SRCS)) sources)"

run: all
	./run-qemu.sh

# A second kernel on a second architecture, embedding the same library (its own Makefile).
riscv64:
	$(MAKE) -C examples/riscv64-virt OUT=$(abspath $(BUILD))/riscv64-virt

# A third kernel, aarch64, written from docs/porting.md and the headers alone.
aarch64:
	$(MAKE) -C examples/aarch64-virt OUT=$(abspath $(BUILD))/aarch64-virt

# --- the library on every architecture vio supports ------------------------------------------
# build/cross/<compiler>-<arch>/libvio.a for each architecture, with clang (--target) and with
# Debian's GCC cross compilers (scripts/deps.sh installs them; a missing one is skipped), with
# the flags a small kernel would use. Then tests/arch/archcheck.py checks each library: nothing
# undefined but memcpy, memset, memmove and memcmp; the device-ordering fences of
# include/vio/barrier.h in the riscv64 and aarch64 notify and interrupt paths. A frame over
# FRAME_LIMIT bytes stops the build, as in `make lib`; -fstack-usage leaves each function's
# frame in a .su file beside its object, from which scripts/vio-stack.py sums the deepest
# interrupt-path chain. `make test` builds these libraries and runs the same checks.
CROSS_ARCHS := x86_64 i686 riscv64 aarch64
CLANG_TARGET_x86_64 := --target=x86_64-unknown-none-elf
CLANG_TARGET_i686 := --target=i686-unknown-none-elf
CLANG_TARGET_riscv64 := --target=riscv64-unknown-elf
CLANG_TARGET_aarch64 := --target=aarch64-none-elf
GCC_x86_64 := x86_64-linux-gnu-gcc
GCC_i686 := i686-linux-gnu-gcc
GCC_riscv64 := riscv64-linux-gnu-gcc
GCC_aarch64 := aarch64-linux-gnu-gcc
# What a kernel for each architecture compiles with: no red zone (x86-64), no FPU or vector
# registers in the kernel (i686, aarch64), code and data anywhere in the address space (riscv64).
ARCH_CFLAGS_x86_64 := -mno-red-zone
ARCH_CFLAGS_i686 := -mgeneral-regs-only
ARCH_CFLAGS_riscv64 := -march=rv64gc -mabi=lp64d -mcmodel=medany
ARCH_CFLAGS_aarch64 := -mgeneral-regs-only
CROSS_CFLAGS := -O2 -std=gnu11 -ffreestanding -nostdinc -fno-stack-protector -fno-pic -fno-pie \
	-fno-omit-frame-pointer -fno-strict-aliasing -Wall -Wextra -Werror \
	-fstack-usage -MMD -MP \
	-Iinclude

# Probing eight compilers costs a quarter of a second: only when a goal needs them.
ifneq ($(filter lib-cross lib-cross-build test,$(MAKECMDGOALS)),)
# $(1): configuration name (clang-riscv64), $(2): compiler and its target flags, $(3): arch.
define CROSS_LIB
CROSS_CC_$(1) := $(2) $$(ARCH_CFLAGS_$(3)) $$(FRAME_FLAGS_$(firstword $(subst -, ,$(1))))
CROSS_INC_$(1) := $$(shell $(2) -print-file-name=include)
CROSS_OBJS_$(1) := $$(LIB_SRCS:%.c=$(BUILD)/cross/$(1)/%.o)
$$(shell mkdir -p $(BUILD)/cross/$(1) && echo '$$(CROSS_CC_$(1)) $$(CROSS_CFLAGS)' | \
	cmp -s - $(BUILD)/cross/$(1)/flags || echo '$$(CROSS_CC_$(1)) $$(CROSS_CFLAGS)' > \
	$(BUILD)/cross/$(1)/flags)
$(BUILD)/cross/$(1)/%.o: %.c $(BUILD)/cross/$(1)/flags
	@mkdir -p $$(@D)
	@echo "CC [$(1)] $$<"
	@$$(CROSS_CC_$(1)) $$(CROSS_CFLAGS) -isystem $$(CROSS_INC_$(1)) -c $$< -o $$@
$(BUILD)/cross/$(1)/libvio.a: $$(CROSS_OBJS_$(1))
	@rm -f $$@
	@ar rcs $$@ $$^
CROSS_LIBS += $(BUILD)/cross/$(1)/libvio.a
endef
CROSS_GCC_ARCHS := $(foreach a,$(CROSS_ARCHS),$(if $(shell command -v $(GCC_$(a))),$(a)))
$(foreach a,$(CROSS_ARCHS),$(eval $(call CROSS_LIB,clang-$(a),clang $(CLANG_TARGET_$(a)),$(a))))
$(foreach a,$(CROSS_GCC_ARCHS),$(eval $(call CROSS_LIB,gcc-$(a),$(GCC_$(a)),$(a))))
endif

# The deepest interrupt-path stack inside vio, per architecture with a GCC cross compiler
# (scripts/vio-stack.py; docs/porting.md, section 4, has the figures).
stack:
	@for a in $(CROSS_ARCHS); do out=$$(python3 scripts/vio-stack.py --arch $$a) || \
		{ echo "$$out"; exit 1; }; echo "$$a: $$(echo "$$out" | tail -1)"; done

lib-cross-build: $(CROSS_LIBS)
	@$(foreach a,$(filter-out $(CROSS_GCC_ARCHS),$(CROSS_ARCHS)),echo "lib-cross: \
		no $(GCC_$(a)), gcc-$(a) skipped (scripts/deps.sh installs it)";) true
lib-cross: lib-cross-build
	python3 tests/arch/archcheck.py

# --- host unit tests (cmocka, ASan + UBSan) ---------------------------------------------------
HOST_CFLAGS := -std=gnu11 -g -O1 -Wall -Wextra -Werror -fsanitize=address,undefined \
	-fno-sanitize-recover=all -fno-omit-frame-pointer -DVIO_DEBUG -Iinclude -Itests/host -MMD -MP
HOST_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null || echo -lcmocka)
HOST_FAKES := $(filter-out tests/host/test_%.c,$(wildcard tests/host/*.c))
HOST_TESTS := $(patsubst tests/host/%.c,$(BUILD)/host/%,$(wildcard tests/host/test_*.c))
HOST_COMMON_OBJS := $(patsubst %.c,$(BUILD)/host/obj/%.o,$(LIB_SRCS) $(HOST_FAKES))

$(BUILD)/host/obj/%.o: %.c
	@mkdir -p $(@D)
	$(HOST_CC) $(HOST_CFLAGS) -c $< -o $@

$(BUILD)/host/test_%: $(BUILD)/host/obj/tests/host/test_%.o $(HOST_COMMON_OBJS)
	$(HOST_CC) $(HOST_CFLAGS) -o $@ $^ $(HOST_LIBS)

hosttest-build: $(HOST_TESTS)
hosttest: hosttest-build
	python3 tests/runner.py --host-only

# --- fuzzing (libFuzzer) ----------------------------------------------------------------------
# The library and the fakes are compiled once and linked into every target (the fakes
# without coverage instrumentation, as in the fast build below).
FUZZ_BASE := -std=gnu11 -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all \
	-DVIO_DEBUG -Iinclude -Itests/host -MMD -MP
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_LIB_OBJS := $(patsubst %.c,$(BUILD)/fuzz/obj/%.o,$(LIB_SRCS))
FUZZ_FAKE_OBJS := $(patsubst %.c,$(BUILD)/fuzz/obj/%.o,$(HOST_FAKES))
$(FUZZ_LIB_OBJS): $(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_BASE) -fsanitize=fuzzer-no-link -c $< -o $@
$(FUZZ_FAKE_OBJS): $(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_BASE) -c $< -o $@
$(BUILD)/fuzz/obj/tests/fuzz/%.o: tests/fuzz/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_BASE) -fsanitize=fuzzer -c $< -o $@
$(BUILD)/fuzz/%: $(BUILD)/fuzz/obj/tests/fuzz/%.o $(FUZZ_LIB_OBJS) $(FUZZ_FAKE_OBJS)
	$(FUZZ_CC) $(FUZZ_BASE) -fsanitize=fuzzer -o $@ $^ $(HOST_LIBS)
# The long run (scripts/fuzz-long.sh): the same targets at -O2 with UBSan trapping and the
# library's VIO_DEBUG checks but without ASan; every input it adds to a corpus is then re-run
# by the ASan build above. Two variants, built from one template:
#   fuzz-fast  edge coverage only, no comparison or indirect-call tracing: 2-5x the
#              executions per second of fuzz-cmp; most of the long run's time;
#   fuzz-cmp   also traces comparisons, so libFuzzer can mutate towards the constants the
#              library compares device values with; a share of each slice (FUZZ_CMP_SHARE).
# Indirect-call tracing feeds only -use_value_profile, which neither variant uses, and took
# a fifth of fuzz_balloon's time. The fakes are built without coverage: the fuzzer should
# steer by the library's branches, not by the test device's, and their counters cost a fifth
# of each input's time.
FUZZ_FAST_BASE := -std=gnu11 -g -O2 -fsanitize=undefined -fsanitize-trap=undefined -DVIO_DEBUG \
	-Iinclude -Itests/host -MMD -MP
FUZZ_NO_CMP := -fno-sanitize-coverage=trace-cmp,indirect-calls
FUZZ_NO_INDIR := -fno-sanitize-coverage=indirect-calls
# $(call fuzz_variant,DIR,FLAGS): DIR_TARGETS, built in $(BUILD)/DIR with FUZZ_FAST_BASE FLAGS
# (objects depend on this Makefile, so a change of FLAGS rebuilds them).
define fuzz_variant
$(1)_TARGETS := $$(patsubst tests/fuzz/%.c,$$(BUILD)/$(1)/%,$$(wildcard tests/fuzz/fuzz_*.c))
$(1)_LIB_OBJS := $$(patsubst %.c,$$(BUILD)/$(1)/obj/%.o,$$(LIB_SRCS))
$(1)_FAKE_OBJS := $$(patsubst %.c,$$(BUILD)/$(1)/obj/%.o,$$(HOST_FAKES))
$$($(1)_LIB_OBJS): $$(BUILD)/$(1)/obj/%.o: %.c Makefile
	@mkdir -p $$(@D)
	$$(FUZZ_CC) $$(FUZZ_FAST_BASE) $(2) -fsanitize=fuzzer-no-link -c $$< -o $$@
$$($(1)_FAKE_OBJS): $$(BUILD)/$(1)/obj/%.o: %.c
	@mkdir -p $$(@D)
	$$(FUZZ_CC) $$(FUZZ_FAST_BASE) -c $$< -o $$@
$$(BUILD)/$(1)/obj/tests/fuzz/%.o: tests/fuzz/%.c Makefile
	@mkdir -p $$(@D)
	$$(FUZZ_CC) $$(FUZZ_FAST_BASE) $(2) -fsanitize=fuzzer -c $$< -o $$@
$$(BUILD)/$(1)/%: $$(BUILD)/$(1)/obj/tests/fuzz/%.o $$($(1)_LIB_OBJS) $$($(1)_FAKE_OBJS)
	$$(FUZZ_CC) $$(FUZZ_FAST_BASE) $(2) -fsanitize=fuzzer -o $$@ $$^ $$(HOST_LIBS)
endef
$(eval $(call fuzz_variant,fuzz-fast,$(FUZZ_NO_CMP)))
$(eval $(call fuzz_variant,fuzz-cmp,$(FUZZ_NO_INDIR)))
fuzz-build: $(FUZZ_TARGETS) $(fuzz-fast_TARGETS) $(fuzz-cmp_TARGETS)
fuzz-long: fuzz-build
	scripts/fuzz-long.sh $(FUZZ_SECONDS)
# The committed seeds (tests/fuzz/corpus/): scripts/fuzz-corpus.sh says how they are chosen.
fuzz-corpus: $(FUZZ_TARGETS)
	scripts/fuzz-corpus.sh
fuzz: $(FUZZ_TARGETS)
	@for f in $(FUZZ_TARGETS); do \
		mkdir -p $(BUILD)/fuzz/corpus-$$(basename $$f); \
		echo "fuzz: $$f for $(FUZZ_SECONDS) s"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			$(BUILD)/fuzz/corpus-$$(basename $$f) \
			$$(ls -d tests/fuzz/corpus/$$(basename $$f) 2>/dev/null) \
			2>$(BUILD)/fuzz/$$(basename $$f).log \
			|| { tail -40 $(BUILD)/fuzz/$$(basename $$f).log; exit 1; }; \
		grep -E 'stat::number_of_executed_units|cov:' $(BUILD)/fuzz/$$(basename $$f).log | tail -2; \
	done

# --- whole-system tests and benchmarks -------------------------------------------------------
test: all hosttest-build lib-cross-build
	python3 tests/runner.py

qemutest: all
	python3 tests/runner.py --qemu-only

# The Linux guest's load generator: static, for an initramfs with no libc of its own.
$(BUILD)/bench/loadgen: tests/bench/loadgen.c
	@mkdir -p $(@D)
	$(HOST_CC) -static -O2 -Wall -Wextra -Werror -o $@ $<

bench: all $(BUILD)/bench/loadgen
	python3 tests/bench.py

bench-quick: all
	python3 tests/bench.py --quick

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

compile_commands.json:
	bear --output $@ -- $(MAKE) -B all hosttest-build VIO_NO_DEPS=1

clean:
	rm -rf $(BUILD)/obj-* $(BUILD)/host $(BUILD)/fuzz $(BUILD)/cross $(BUILD)/iso-cache \
		$(BUILD)/*.elf $(BUILD)/*.iso $(BUILD)/*.a $(BUILD)/test-logs

distclean:
	rm -rf $(BUILD)

help:
	@sed -n '2,/^$$/p' Makefile | sed -n 's/^# \{0,1\}//p'

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
