/* SPDX-License-Identifier: GPL-2.0 */
/* Identity-based L3/L4 policy of the local endpoints.
 *
 * One hash map for every endpoint of the cluster, keyed by {endpoint id, direction, remote
 * identity, dport, proto}; 0 in identity, dport or proto is a wildcard. A new flow is looked up
 * in Cilium's order of specificity: L3L4 (identity + port/proto), L3-only (identity), L4-only
 * (any identity + port/proto), then allow-all. Deny beats allow whatever their specificity
 * (Cilium's rule), so a deny entry anywhere in that order drops the flow; without a deny, any
 * allow lets it through. Only endpoints whose policy is enforced (EP_F_*_ENFORCED) are checked.
 */
#ifndef FLEETNET_POLICY_H
#define FLEETNET_POLICY_H

#include "common.h"

#define POLICY_MAX		65536

#define POLICY_INGRESS		0
#define POLICY_EGRESS		1

#define POLICY_F_DENY		0x1

struct policy_key {
	__u32 identity;		/* remote identity, 0 = any */
	__u16 endpoint_id;
	__be16 dport;		/* 0 = any */
	__u8 proto;		/* 0 = any */
	__u8 dir;		/* POLICY_INGRESS or POLICY_EGRESS */
	__u16 pad;
};

struct policy_entry {
	__u8 flags;		/* POLICY_F_DENY */
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, POLICY_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct policy_key);
	__type(value, struct policy_entry);
} fn_policy SEC(".maps");

/* 0 when allowed, DROP_POLICY_DENY or DROP_POLICY otherwise. */
static __always_inline int policy_can_access(__u16 endpoint_id, __u8 dir, __u32 remote_identity,
					     __be16 dport, __u8 proto)
{
	struct policy_key key = { .endpoint_id = endpoint_id, .dir = dir };
	struct policy_entry *e;
	bool allowed = false;
	int i;

	/* i = 0..3 with the remote identity, 4..7 with any identity; within each half:
	 * port+proto, port+any proto, any port+proto, any port+any proto. */
#pragma unroll
	for (i = 0; i < 8; i++) {
		key.identity = i < 4 ? remote_identity : 0;
		key.dport = (i & 2) ? 0 : dport;
		key.proto = (i & 1) ? 0 : proto;
		if (i > 0 && key.identity == 0 && i < 4)
			continue;	/* remote identity 0 is the wildcard: its lookups come later */
		e = bpf_map_lookup_elem(&fn_policy, &key);
		if (e) {
			if (e->flags & POLICY_F_DENY)
				return DROP_POLICY_DENY;
			allowed = true;
		}
	}
	return allowed ? 0 : DROP_POLICY;
}

#endif /* FLEETNET_POLICY_H */
