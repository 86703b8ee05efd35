/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to the library: the device snapshot envelope as a CBOR item, for
 * transports that embed it in their own snapshot (virtio-mmio) and for the
 * vhost-user device state transfer. The public API has the same as bytes
 * (vdk_device_snapshot(), vdk_device_restore()).
 */
#ifndef VDK_DEVICE_INTERNAL_H
#define VDK_DEVICE_INTERNAL_H

#include <cbor.h>

#include <vdk/device.h>

#ifndef VDK_HIDDEN
#define VDK_HIDDEN __attribute__((visibility("hidden")))
#endif

/** vdk_device_snapshot_item() - vdk_device_snapshot() as a new CBOR item
 * (the caller decrefs it); same rules and errors. */
VDK_HIDDEN int vdk_device_snapshot_item(struct vdk_device *dev,
					cbor_item_t **out);

/** vdk_device_restore_item() - vdk_device_restore() from a CBOR item
 * (borrowed); same rules and errors. */
VDK_HIDDEN int vdk_device_restore_item(struct vdk_device *dev,
				       const cbor_item_t *item);

#endif /* VDK_DEVICE_INTERNAL_H */
