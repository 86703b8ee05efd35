/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vdk-vmm's --net option: a virtio-net device (<vdk/devices/net.h>) on a
 * tap interface or the loopback backend, added to the VM's device set.
 */
#ifndef VDK_VMM_NET_H
#define VDK_VMM_NET_H

#include "devices.h"

/**
 * vmm_net_add() - parse @spec and add the device as "net0":
 *   tap=IFNAME[,mac=MAC][,queue-pairs=N][,mtu=N]
 *   loopback[,mac=MAC][,queue-pairs=N][,mtu=N]
 * @errmsg: set on failure to a static reason.
 * Return: 0; -EINVAL for a bad @spec; the backend's, the device's or
 * vmm_devices_add()'s error.
 */
int vmm_net_add(struct vmm_devices *d, const char *spec, const char **errmsg);

#endif /* VDK_VMM_NET_H */
