/* SPDX-License-Identifier: GPL-2.0 */
/* Service load balancing: VIP:port/proto -> one of N backends, with DNAT on the way out of the
 * client and reverse NAT of the replies on the way back into it.
 *
 * Four maps, written by the control plane in an order that never shows a half-written service:
 * backends and reverse-NAT entries first, then the slots, then the service entry whose count
 * says how many slots are valid (shrinking writes the count first and deletes slots after).
 *
 *   fn_lb4_svc     lb4_key                 -> lb4_service {count, rev_nat_id, flags}
 *   fn_lb4_slots   lb4_slot_key {svc,slot} -> backend id (u32), slot in [0, count)
 *   fn_lb4_be      backend id (u32)        -> lb4_backend {ip, port, cluster_id}
 *   fn_lb4_revnat  rev_nat_id (u16)        -> lb4_reverse_nat {vip, port}
 */
#ifndef FLEETNET_LB_H
#define FLEETNET_LB_H

#include "common.h"
#include "conntrack.h"

#define LB4_SERVICES_MAX	65536
#define LB4_SLOTS_MAX		262144
#define LB4_BACKENDS_MAX	131072
#define LB4_REVNAT_MAX		65536

struct lb4_key {
	__be32 address;
	__be16 dport;
	__u8 proto;
	__u8 pad;
};

struct lb4_service {
	__u16 count;		/* valid slots; 0 = the service exists but has no backend */
	__u16 rev_nat_id;
	__u8 flags;		/* reserved for session affinity and friends */
	__u8 pad[3];
};

struct lb4_slot_key {
	__be32 address;
	__be16 dport;
	__u8 proto;
	__u8 pad;
	__u32 slot;
};

struct lb4_backend {
	__be32 address;
	__be16 port;
	__u16 cluster_id;
};

struct lb4_reverse_nat {
	__be32 address;
	__be16 port;
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB4_SERVICES_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lb4_key);
	__type(value, struct lb4_service);
} fn_lb4_svc SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB4_SLOTS_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lb4_slot_key);
	__type(value, __u32);
} fn_lb4_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB4_BACKENDS_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct lb4_backend);
} fn_lb4_be SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB4_REVNAT_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u16);
	__type(value, struct lb4_reverse_nat);
} fn_lb4_revnat SEC(".maps");

static __always_inline struct lb4_service *lb4_lookup_service(const struct pkt4 *p, struct lb4_key *key)
{
	key->address = p->daddr;
	key->dport = p->dport;
	key->proto = p->proto;
	key->pad = 0;
	return bpf_map_lookup_elem(&fn_lb4_svc, key);
}

static __always_inline struct lb4_backend *lb4_select_backend(const struct lb4_key *key,
							      const struct lb4_service *svc,
							      __u32 *backend_id)
{
	struct lb4_slot_key slot = {
		.address = key->address, .dport = key->dport, .proto = key->proto,
	};
	__u32 *id;

	if (!svc->count)
		return NULL;
	slot.slot = bpf_get_prandom_u32() % svc->count;
	id = bpf_map_lookup_elem(&fn_lb4_slots, &slot);
	if (!id)
		return NULL;
	*backend_id = *id;
	return bpf_map_lookup_elem(&fn_lb4_be, id);
}

/* DNAT of a client's packet to a VIP: every packet of a flow goes to the backend its CT_SERVICE
 * entry remembers; a new flow, or one whose backend was removed, gets a random slot. */
static __always_inline int lb4_local(struct __sk_buff *skb, struct pkt4 *p, const struct lb4_key *key,
				     const struct lb4_service *svc, __u16 *rev_nat_id)
{
	struct ct4_key ckey = {
		.saddr = p->saddr, .daddr = key->address, .sport = p->sport, .dport = key->dport,
		.proto = p->proto, .dir = CT_SERVICE,
	};
	struct lb4_backend *be = NULL;
	struct ct_entry *e;
	__u32 backend_id = 0;
	__u16 rnat = svc->rev_nat_id;
	int ret;

	e = bpf_map_lookup_elem(&fn_ct4, &ckey);
	if (e && ct_alive(e)) {
		backend_id = e->backend_id;
		be = bpf_map_lookup_elem(&fn_lb4_be, &backend_id);
	}
	if (be) {
		ct_refresh(e, p, skb->len, false);
	} else {
		be = lb4_select_backend(key, svc, &backend_id);
		if (!be)
			return DROP_NO_SERVICE_BACKEND;
		ret = ct4_create(&ckey, p, skb->len, rnat, backend_id, 0);
		if (ret < 0)
			return ret;
	}
	*rev_nat_id = rnat;
	return pkt4_rewrite(skb, p, true, be->address, be->port);
}

/* Reverse NAT of a reply coming back to the client: the backend's address becomes the VIP. */
static __always_inline int lb4_rev_nat(struct __sk_buff *skb, struct pkt4 *p, __u16 rev_nat_id)
{
	struct lb4_reverse_nat *nat = bpf_map_lookup_elem(&fn_lb4_revnat, &rev_nat_id);

	if (!nat)
		return 0;	/* service deleted: the client's stack will reset the flow */
	return pkt4_rewrite(skb, p, false, nat->address, nat->port);
}

#endif /* FLEETNET_LB_H */
