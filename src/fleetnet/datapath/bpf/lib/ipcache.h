/* SPDX-License-Identifier: GPL-2.0 */
/* IP/prefix -> security identity of every address the cluster knows, local and remote (Cilium's
 * ipcache). Longest prefix wins, so CIDR identities and pod /32s live in one map. */
#ifndef FLEETNET_IPCACHE_H
#define FLEETNET_IPCACHE_H

#include "common.h"

#define IPCACHE_MAX		65536

struct ipcache_key {
	__u32 prefixlen;	/* bits of ip that must match, 0..32 */
	__be32 ip;
};

struct remote_info {
	__u32 identity;
	__u16 cluster_id;
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, IPCACHE_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ipcache_key);
	__type(value, struct remote_info);
} fn_ipcache4 SEC(".maps");

static __always_inline __u32 ipcache_identity(__be32 ip)
{
	struct ipcache_key key = { .prefixlen = 32, .ip = ip };
	struct remote_info *info = bpf_map_lookup_elem(&fn_ipcache4, &key);

	return info ? info->identity : WORLD_ID;
}

#endif /* FLEETNET_IPCACHE_H */
