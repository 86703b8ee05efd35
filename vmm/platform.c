/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Legacy PC ports: ACPI sleep/reset register, i8042 reset, POST port
 * (see platform.h).
 */
#include "platform.h"

#include <string.h>

#include "acpi.h"

/* ACPI sleep/reset register: a byte; a wider write uses its low byte. */
static void sleep_reg_read(void *opaque, uint64_t base, uint64_t offset,
			   void *data, size_t len)
{
	(void)opaque, (void)base, (void)offset;
	memset(data, 0, len);
}

static void sleep_reg_write(void *opaque, uint64_t base, uint64_t offset,
			    const void *data, size_t len)
{
	struct vmm_platform *p = opaque;
	uint8_t value = *(const uint8_t *)data;

	(void)base, (void)len;
	if (offset != 0)
		return;
	switch (vmm_acpi_sleep_reg_action(value)) {
	case VMM_ACPI_POWEROFF:
		vmm_stop_request(p->stop, VMM_STOP_POWEROFF,
				 "guest powered off (ACPI S5)");
		break;
	case VMM_ACPI_RESET:
		vmm_stop_request(p->stop, VMM_STOP_RESET,
				 "guest requested a reboot (ACPI reset "
				 "register); vdk-vmm does not reboot");
		break;
	default:
		break;
	}
}

static const struct vdk_bus_device_ops sleep_reg_ops = {
	.read = sleep_reg_read,
	.write = sleep_reg_write,
};

/* i8042: status and data read as 0; only the reset command does anything. */
static void i8042_read(void *opaque, uint64_t base, uint64_t offset, void *data,
		       size_t len)
{
	(void)opaque, (void)base, (void)offset;
	memset(data, 0, len);
}

static void i8042_write(void *opaque, uint64_t base, uint64_t offset,
			const void *data, size_t len)
{
	struct vmm_platform *p = opaque;

	(void)len;
	if (base + offset == VMM_PLATFORM_I8042_CMD &&
	    *(const uint8_t *)data == VMM_PLATFORM_I8042_RESET)
		vmm_stop_request(p->stop, VMM_STOP_RESET,
				 "guest requested a reboot (i8042 reset); "
				 "vdk-vmm does not reboot");
}

static const struct vdk_bus_device_ops i8042_ops = {
	.read = i8042_read,
	.write = i8042_write,
};

/* POST / delay ports: reads all ones, writes dropped, silently. */
static void post_read(void *opaque, uint64_t base, uint64_t offset, void *data,
		      size_t len)
{
	(void)opaque, (void)base, (void)offset;
	memset(data, 0xff, len);
}

static const struct vdk_bus_device_ops post_ops = {
	.read = post_read,
	.write = NULL,
};

int vmm_platform_register(struct vmm_platform *p, struct vdk_bus *pio,
			  struct vmm_stop *stop)
{
	static const struct {
		uint16_t port;
		const struct vdk_bus_device_ops *ops;
	} ports[] = {
		{VMM_PLATFORM_SLEEP_PORT, &sleep_reg_ops},
		{VMM_PLATFORM_I8042_DATA, &i8042_ops},
		{VMM_PLATFORM_I8042_CMD, &i8042_ops},
		{0x80, &post_ops},
		{0xed, &post_ops},
	};
	int r;

	p->stop = stop;
	for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
		r = vdk_bus_register(pio,
				     (struct vdk_bus_range){ports[i].port, 1},
				     (struct vdk_bus_device){ports[i].ops, p});
		if (r < 0)
			return r;
	}
	return 0;
}
