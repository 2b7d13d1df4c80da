# The vio library's sources, for any Makefile (ours, or the kernel that embeds vio).
#
#   VIO_ROOT := path/to/vio
#   include $(VIO_ROOT)/src/virtio/vio.mk
#   CFLAGS += $(VIO_CFLAGS)        # adds -I$(VIO_ROOT)/include
#   OBJS   += $(VIO_SRCS:.c=.o)
#
# The sources need only the compiler's freestanding headers (stdint.h, stddef.h, stdbool.h,
# stdarg.h) and include/vio/. They touch the machine through include/vio/port.h only.
# Each layer uses only those below it: src/drivers -> src/virtio -> src/pci -> src/common
# (formatting, logging, error names: what every layer shares).
VIO_ROOT ?= .
VIO_SRCS := $(sort $(wildcard $(VIO_ROOT)/src/common/*.c $(VIO_ROOT)/src/pci/*.c \
	$(VIO_ROOT)/src/virtio/*.c $(VIO_ROOT)/src/drivers/*.c))
VIO_CFLAGS := -I$(VIO_ROOT)/include
