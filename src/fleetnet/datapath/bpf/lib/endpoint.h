/* SPDX-License-Identifier: GPL-2.0 */
/* The local endpoints (pods) of a cluster, filled by the loader when it attaches a veth.
 *
 * One object serves every veth, so per-endpoint settings cannot be compiled in as Cilium does
 * (LXC_ID, SECLABEL). They are looked up at run time instead. The key is the pod's IPv4 address,
 * not the veth ifindex: one set of maps serves every node of a cluster, and ifindexes repeat
 * across node namespaces. The ifindex is kept in the value and checked against skb->ifindex so
 * that a pod cannot send with another endpoint's address. */
#ifndef FLEETNET_ENDPOINT_H
#define FLEETNET_ENDPOINT_H

#include "common.h"

#define ENDPOINTS_MAX		16384

#define EP_F_INGRESS_ENFORCED	0x1
#define EP_F_EGRESS_ENFORCED	0x2

struct endpoint_info {
	__u32 ifindex;		/* host-side veth, in its node namespace */
	__u32 identity;		/* security identity of the pod */
	__u16 endpoint_id;	/* Cilium endpoint id: the policy map is keyed by it */
	__u8 flags;		/* EP_F_* */
	__u8 pad;
	__u32 netns_ino;	/* inode of the node namespace, so the loader can find its own entries */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ENDPOINTS_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __be32);
	__type(value, struct endpoint_info);
} fn_endpoints SEC(".maps");

static __always_inline struct endpoint_info *lookup_endpoint(__be32 ip)
{
	return bpf_map_lookup_elem(&fn_endpoints, &ip);
}

#endif /* FLEETNET_ENDPOINT_H */
