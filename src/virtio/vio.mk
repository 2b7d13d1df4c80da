# The vio library's sources, for any Makefile (ours, or the kernel that embeds vio). Set what
# you want, include this file, and build the objects it lists with one rule of your own:
#
#   VIO_ROOT       := third_party/vio   # this copy of vio (default: .)
#   VIO_OBJDIR     := build/vio         # where the objects go (default: build/vio)
#   VIO_TRANSPORTS := mmio              # mmio, pci or both (default: both)
#   VIO_DRIVERS    := blk rng           # blk net rng console balloon gpu input
#                                       # (default: all; empty: none)
#   include $(VIO_ROOT)/src/virtio/vio.mk
#   CFLAGS += $(VIO_CFLAGS)             # -I$(VIO_ROOT)/include
#
#   $(VIO_OBJDIR)/%.o: $(VIO_ROOT)/%.c
#   	@mkdir -p $(@D)
#   	$(CC) $(CFLAGS) -c $< -o $@
#   kernel.elf: $(KERNEL_OBJS) $(VIO_OBJS)
#
# VIO_SRCS lists the sources of that selection, VIO_OBJS an object for each under VIO_OBJDIR
# (VIO_OBJDIR/src/pci/bar.o for src/pci/bar.c), so nothing is written next to the sources: a
# read-only copy of vio builds. docs/porting.md gives the code size of a few selections.
#
# The sources need only the compiler's freestanding headers (stdint.h, stddef.h, stdbool.h,
# stdarg.h) and include/vio/. They touch the machine through include/vio/port.h only.
# Each layer uses only those below it: src/drivers -> src/virtio -> src/pci -> src/common
# (formatting, logging, error names: what every layer shares). The core (virtio.c,
# virtqueue.c, ...) calls no transport by name: it reaches the one a device was probed with
# through its ops table, so leaving out `pci` drops src/pci and the PCI transports whole.
VIO_ROOT ?= .
VIO_OBJDIR ?= build/vio
VIO_TRANSPORTS ?= mmio pci

# Each transport's files; the core is every other file of src/virtio.
VIO_TRANSPORT_SRCS_mmio := $(VIO_ROOT)/src/virtio/mmio.c
VIO_TRANSPORT_SRCS_pci := $(wildcard $(VIO_ROOT)/src/pci/*.c $(VIO_ROOT)/src/virtio/pci_*.c) \
	$(VIO_ROOT)/src/virtio/virtio_pci.c
VIO_ALL_TRANSPORTS := mmio pci
VIO_ALL_DRIVERS := $(patsubst $(VIO_ROOT)/src/drivers/virtio_%.c,%, \
	$(wildcard $(VIO_ROOT)/src/drivers/virtio_*.c))
VIO_DRIVERS ?= $(VIO_ALL_DRIVERS)

ifeq ($(strip $(VIO_TRANSPORTS)),)
$(error vio.mk: VIO_TRANSPORTS is empty; name one or more of: $(VIO_ALL_TRANSPORTS))
endif
ifneq ($(filter-out $(VIO_ALL_TRANSPORTS),$(VIO_TRANSPORTS)),)
$(error vio.mk: no transport $(filter-out $(VIO_ALL_TRANSPORTS),$(VIO_TRANSPORTS)) \
	(there are: $(VIO_ALL_TRANSPORTS)))
endif
ifneq ($(filter-out $(VIO_ALL_DRIVERS),$(VIO_DRIVERS)),)
$(error vio.mk: no driver $(filter-out $(VIO_ALL_DRIVERS),$(VIO_DRIVERS)) \
	(there are: $(VIO_ALL_DRIVERS)))
endif

VIO_CORE_SRCS := $(wildcard $(VIO_ROOT)/src/common/*.c) \
	$(filter-out $(foreach t,$(VIO_ALL_TRANSPORTS),$(VIO_TRANSPORT_SRCS_$(t))), \
		$(wildcard $(VIO_ROOT)/src/virtio/*.c))
VIO_SRCS := $(sort $(VIO_CORE_SRCS) $(foreach t,$(VIO_TRANSPORTS),$(VIO_TRANSPORT_SRCS_$(t))) \
	$(patsubst %,$(VIO_ROOT)/src/drivers/virtio_%.c,$(VIO_DRIVERS)))
VIO_OBJS := $(patsubst $(VIO_ROOT)/%.c,$(VIO_OBJDIR)/%.o,$(VIO_SRCS))
VIO_CFLAGS := -I$(VIO_ROOT)/include
