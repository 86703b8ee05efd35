/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-net control queue (virtio 1.2 §5.1.6.5): each chain is
 * { u8 class; u8 command; command-specific data } device-readable, then
 * { u8 ack } device-writable. The readable part is copied once into the
 * device's buffer and parsed from there; every length is exact.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include <linux/virtio_net.h>

#include <vdk/devices/net.h>
#include <vdk/log.h>
#include <vdk/virtq.h>

#include "net_internal.h"

void net_ctrl_reset(struct vdk_net *n)
{
	/* §5.1.6.5.1: promiscuous until the driver says otherwise (as
	 * QEMU); empty tables, no VLAN filtered in. */
	n->promisc = true;
	n->allmulti = false;
	n->uni_n = n->multi_n = 0;
	n->uni_overflow = n->multi_overflow = false;
	memset(n->vlans, 0, sizeof(n->vlans));
}

static uint8_t ctrl_rx(struct vdk_net *n, uint8_t cmd, const uint8_t *d,
		       uint32_t len)
{
	if (!net_has(n, VIRTIO_NET_F_CTRL_RX) || len != 1)
		return VIRTIO_NET_ERR;
	switch (cmd) {
	case VIRTIO_NET_CTRL_RX_PROMISC:
		n->promisc = d[0] != 0;
		return VIRTIO_NET_OK;
	case VIRTIO_NET_CTRL_RX_ALLMULTI:
		n->allmulti = d[0] != 0;
		return VIRTIO_NET_OK;
	default: /* the others need CTRL_RX_EXTRA, not offered */
		return VIRTIO_NET_ERR;
	}
}

/*
 * One MAC table of a TABLE_SET at @d[*off]: le32 entries, then entries *
 * 6 bytes. Parsed into @table (overflow set past VDK_NET_MAC_TABLE_ENTRIES).
 */
static int parse_table(const uint8_t *d, uint32_t len, uint32_t *off,
		       uint8_t (*table)[6], uint32_t *num, bool *overflow)
{
	uint32_t entries;

	if (len - *off < 4)
		return -EINVAL;
	memcpy(&entries, d + *off, 4);
	entries = le32toh(entries);
	*off += 4;
	if (entries > (len - *off) / 6)
		return -EINVAL;
	*overflow = entries > VDK_NET_MAC_TABLE_ENTRIES;
	*num = *overflow ? 0 : entries;
	memcpy(table, d + *off, (size_t)*num * 6);
	*off += entries * 6;
	return 0;
}

static uint8_t ctrl_mac(struct vdk_net *n, uint8_t cmd, const uint8_t *d,
			uint32_t len)
{
	uint8_t uni[VDK_NET_MAC_TABLE_ENTRIES][6];
	uint8_t multi[VDK_NET_MAC_TABLE_ENTRIES][6];
	uint32_t off = 0, nu, nm;
	bool ou, om;

	switch (cmd) {
	case VIRTIO_NET_CTRL_MAC_TABLE_SET: /* §5.1.6.5.2 */
		if (!net_has(n, VIRTIO_NET_F_CTRL_RX))
			return VIRTIO_NET_ERR;
		if (parse_table(d, len, &off, uni, &nu, &ou) < 0 ||
		    parse_table(d, len, &off, multi, &nm, &om) < 0 ||
		    off != len)
			return VIRTIO_NET_ERR;
		memcpy(n->uni, uni, sizeof(uni));
		memcpy(n->multi, multi, sizeof(multi));
		n->uni_n = nu;
		n->multi_n = nm;
		n->uni_overflow = ou;
		n->multi_overflow = om;
		return VIRTIO_NET_OK;
	case VIRTIO_NET_CTRL_MAC_ADDR_SET:
		if (!net_has(n, VIRTIO_NET_F_CTRL_MAC_ADDR) || len != 6)
			return VIRTIO_NET_ERR;
		memcpy(n->mac, d, 6);
		return VIRTIO_NET_OK;
	default:
		return VIRTIO_NET_ERR;
	}
}

static uint8_t ctrl_vlan(struct vdk_net *n, uint8_t cmd, const uint8_t *d,
			 uint32_t len)
{
	uint16_t vid;

	if (!net_has(n, VIRTIO_NET_F_CTRL_VLAN) || len != 2)
		return VIRTIO_NET_ERR;
	memcpy(&vid, d, 2);
	vid = le16toh(vid);
	if (vid >= 4096)
		return VIRTIO_NET_ERR;
	switch (cmd) {
	case VIRTIO_NET_CTRL_VLAN_ADD:
		n->vlans[vid / 8] |= (uint8_t)(1u << (vid % 8));
		return VIRTIO_NET_OK;
	case VIRTIO_NET_CTRL_VLAN_DEL:
		n->vlans[vid / 8] &= (uint8_t) ~(1u << (vid % 8));
		return VIRTIO_NET_OK;
	default:
		return VIRTIO_NET_ERR;
	}
}

static uint8_t ctrl_announce(struct vdk_net *n, uint8_t cmd, uint32_t len)
{
	if (!net_has(n, VIRTIO_NET_F_GUEST_ANNOUNCE) ||
	    cmd != VIRTIO_NET_CTRL_ANNOUNCE_ACK || len != 0)
		return VIRTIO_NET_ERR;
	/* §5.1.6.5.4: the ack clears the ANNOUNCE bit. */
	n->status &= (uint16_t)~VIRTIO_NET_S_ANNOUNCE;
	return VIRTIO_NET_OK;
}

static uint8_t ctrl_mq(struct vdk_net *n, uint8_t cmd, const uint8_t *d,
		       uint32_t len)
{
	uint16_t pairs, old = n->cur_pairs;

	if (!net_has(n, VIRTIO_NET_F_MQ) ||
	    cmd != VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET || len != 2)
		return VIRTIO_NET_ERR;
	memcpy(&pairs, d, 2);
	pairs = le16toh(pairs);
	/* §5.1.6.5.5: 1..max_virtqueue_pairs. */
	if (pairs < VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN || pairs > n->max_pairs)
		return VIRTIO_NET_ERR;
	if (n->be->ops->set_queue_pairs &&
	    n->be->ops->set_queue_pairs(n->be->impl, pairs) < 0)
		return VIRTIO_NET_ERR;
	/* Pairs that stop hand back what they hold for a packet. */
	for (uint16_t p = pairs; p < old; p++)
		net_rx_abort(n, p);
	n->cur_pairs = pairs;
	/* Pairs that start take what is already waiting. */
	for (uint16_t p = old; p < pairs; p++) {
		net_tx_process(n, p);
		net_rx_process(n, p);
	}
	return VIRTIO_NET_OK;
}

/* Execute one command; the ack byte. */
static uint8_t ctrl_exec(struct vdk_net *n, uint8_t cls, uint8_t cmd,
			 const uint8_t *d, uint32_t len)
{
	switch (cls) {
	case VIRTIO_NET_CTRL_RX:
		return ctrl_rx(n, cmd, d, len);
	case VIRTIO_NET_CTRL_MAC:
		return ctrl_mac(n, cmd, d, len);
	case VIRTIO_NET_CTRL_VLAN:
		return ctrl_vlan(n, cmd, d, len);
	case VIRTIO_NET_CTRL_ANNOUNCE:
		return ctrl_announce(n, cmd, len);
	case VIRTIO_NET_CTRL_MQ:
		return ctrl_mq(n, cmd, d, len);
	default: /* GUEST_OFFLOADS, NOTF_COAL, ...: not offered */
		return VIRTIO_NET_ERR;
	}
}

bool net_ctrl_process(struct vdk_net *n)
{
	uint16_t idx = net_ctrl_index(n);
	struct vdk_virtq *q = idx < n->vdev.num_queues ? n->queues[idx] : NULL;
	unsigned budget = VDK_NET_BUDGET;
	bool returned = false;
	struct vdk_virtq_chain c;
	int ret;

	if (!n->running || n->broken || !q || !net_has(n, VIRTIO_NET_F_CTRL_VQ))
		return false;
	do {
		vdk_virtq_enable_notification(q, false);
		while (budget) {
			uint32_t written = 0;
			uint8_t ack;

			c = (struct vdk_virtq_chain){.iov = n->ctrl_iov,
						     .iov_cap = n->iov_cap};
			ret = vdk_virtq_pop(q, &c);
			if (ret == 0)
				break;
			if (ret < 0) {
				net_fail(n, q, "controlq");
				return false;
			}
			budget--;
			if (c.readable_len < 2 || c.writable_len < 1 ||
			    c.readable_len > sizeof(n->ctrl_buf)) {
				/* No room for the ack, or no command: it
				 * cannot be answered. */
				n->stats.ctrl_errors++;
				if (c.writable_len >= 1) {
					ack = VIRTIO_NET_ERR;
					written = (uint32_t)
						vdk_virtq_chain_copy_to(
							&c, 0, &ack, 1);
				}
			} else {
				uint32_t len = c.readable_len;

				vdk_virtq_chain_copy_from(&c, 0, n->ctrl_buf,
							  len);
				ack = ctrl_exec(n, n->ctrl_buf[0],
						n->ctrl_buf[1], n->ctrl_buf + 2,
						len - 2);
				if (ack == VIRTIO_NET_OK)
					n->stats.ctrl_commands++;
				else
					n->stats.ctrl_errors++;
				written = (uint32_t)vdk_virtq_chain_copy_to(
					&c, 0, &ack, 1);
			}
			if (n->broken)
				return false;
			if (vdk_virtq_add_used(q, c.head, written) < 0) {
				net_fail(n, q, "controlq");
				return false;
			}
			returned = true;
		}
	} while (budget && vdk_virtq_enable_notification(q, true));
	if (returned && vdk_virtq_should_notify(q))
		vdk_interrupt_signal_used_queue(n->irq, idx);
	/* Budget spent: notifications stay off, the caller comes back. */
	return !budget && (vdk_virtq_has_avail(q) ||
			   vdk_virtq_enable_notification(q, true));
}
