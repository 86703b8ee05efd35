/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The few legacy PC ports vdk-vmm answers besides COM1, each a tiny device
 * on the port I/O bus:
 *
 *   0x600       the ACPI sleep/reset register the FADT points to
 *               (SLEEP_CONTROL_REG, SLEEP_STATUS_REG, RESET_REG; acpi.h).
 *               A write decoded by vmm_acpi_sleep_reg_action() as S5 stops
 *               the VM with VMM_STOP_POWEROFF, as a reset with
 *               VMM_STOP_RESET; reads return 0 (WAK_STS clear).
 *   0x60, 0x64  an i8042 keyboard controller that has nothing to say: reads
 *               return 0 (no data, output buffer empty); the "pulse reset
 *               line" command 0xfe written to 0x64 stops the VM with
 *               VMM_STOP_RESET (Linux reboot=k, and the reset stub at the
 *               reset vector, boot_x86_64.h, that Linux's default reboot
 *               reaches here). Other writes are ignored.
 *   0x80, 0xed  the POST / I/O delay ports Linux writes to for timing:
 *               writes ignored, reads all ones, no log.
 *
 * Every value is accepted from the guest; nothing here can fail at run
 * time.
 */
#ifndef VDK_PLATFORM_H
#define VDK_PLATFORM_H

#include <vdk/bus.h>

#include "vcpu.h"

/** The port of the ACPI sleep/reset register (given to vmm_acpi_build()). */
#define VMM_PLATFORM_SLEEP_PORT 0x600u
/** i8042 ports and the reset command (IBM PC/AT technical reference). */
#define VMM_PLATFORM_I8042_DATA	 0x60u
#define VMM_PLATFORM_I8042_CMD	 0x64u
#define VMM_PLATFORM_I8042_RESET 0xfeu

/** struct vmm_platform - state of the legacy ports; fields private. */
struct vmm_platform {
	struct vmm_stop *stop; /**< not owned */
};

/**
 * vmm_platform_register() - register the ports above on @pio.
 * @p: caller's storage; must outlive the registrations (the bus is freed
 *     after it, or the ports deregistered by their base).
 * @stop: where poweroff and reset requests go; not owned.
 * Return: 0, or vdk_bus_register()'s error (then some ports may stay
 * registered; the VMM gives up and frees the bus).
 */
int vmm_platform_register(struct vmm_platform *p, struct vdk_bus *pio,
			  struct vmm_stop *stop);

#endif /* VDK_PLATFORM_H */
