/* SPDX-License-Identifier: GPL-2.0 */
/* Connection tracking: one LRU map of 5-tuples, shared by load balancing and policy.
 *
 * Entries are per endpoint and direction, as in Cilium: CT_EGRESS entries are made when an
 * endpoint opens a flow (from_container), CT_INGRESS entries when an endpoint accepts one
 * (to_container), CT_SERVICE entries remember which backend a client's flow to a VIP uses. The
 * direction is part of the key, so a flow that the client's egress let through does not skip the
 * server's ingress policy even though both ends share this map. A packet is ESTABLISHED when its
 * own tuple has an entry for this direction, and a REPLY when the reversed tuple has one for the
 * other direction. Entries expire (lifetime, in CLOCK_MONOTONIC seconds) so that a stale entry
 * cannot let a flow bypass a policy added later for ever; LRU eviction bounds the map.
 */
#ifndef FLEETNET_CONNTRACK_H
#define FLEETNET_CONNTRACK_H

#include "common.h"

#define CT_MAX			65536

#define CT_EGRESS		0
#define CT_INGRESS		1
#define CT_SERVICE		2

#define CT_F_CLOSING		0x1	/* FIN or RST seen */
#define CT_F_SEEN_REPLY		0x2

#define CT_LIFETIME_TCP		21600	/* established TCP */
#define CT_LIFETIME_SYN		60	/* TCP before any reply */
#define CT_LIFETIME_NONTCP	60
#define CT_CLOSE_TIMEOUT	10

enum ct_status {
	CT_NEW,
	CT_ESTABLISHED,
	CT_REPLY,
	CT_REOPENED,	/* a SYN on a closing entry: a new connection reusing the tuple */
};

struct ct4_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 dir;	/* CT_EGRESS, CT_INGRESS or CT_SERVICE */
	__u16 pad;
};

struct ct_entry {
	__u64 packets;
	__u64 bytes;
	__u32 lifetime;		/* expires at this CLOCK_MONOTONIC second */
	__u32 backend_id;	/* CT_SERVICE: the backend this flow sticks to */
	__u16 rev_nat_id;	/* CT_EGRESS to a backend: how replies are reverse-NATed; 0 = none */
	__u8 flags;		/* CT_F_* */
	__u8 tcp_flags;		/* every TCP flag seen, ORed */
	__u32 remote_identity;	/* identity of the other end when the entry was made */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CT_MAX);
	__type(key, struct ct4_key);
	__type(value, struct ct_entry);
} fn_ct4 SEC(".maps");

static __always_inline __u32 ct_now(void)
{
	return bpf_ktime_get_ns() / 1000000000ULL;
}

static __always_inline __u32 ct_lifetime(const struct pkt4 *p, __u8 flags, __u32 now)
{
	if (flags & CT_F_CLOSING)
		return now + CT_CLOSE_TIMEOUT;
	if (p->proto != IPPROTO_TCP)
		return now + CT_LIFETIME_NONTCP;
	return now + ((flags & CT_F_SEEN_REPLY) ? CT_LIFETIME_TCP : CT_LIFETIME_SYN);
}

/* Accounts one packet on an existing entry; reply says it travels against the entry's tuple. */
static __always_inline void ct_refresh(struct ct_entry *e, const struct pkt4 *p, __u32 len, bool reply)
{
	__u8 flags = e->flags;
	__u32 lifetime;

	__sync_fetch_and_add(&e->packets, 1);
	__sync_fetch_and_add(&e->bytes, len);
	if (reply)
		flags |= CT_F_SEEN_REPLY;
	if (p->tcp_flags & (TCP_F_FIN | TCP_F_RST))
		flags |= CT_F_CLOSING;
	if (flags != e->flags)
		e->flags = flags;
	if ((e->tcp_flags | p->tcp_flags) != e->tcp_flags)
		e->tcp_flags |= p->tcp_flags;
	/* Written at most once a second per entry, to keep the cache line quiet. */
	lifetime = ct_lifetime(p, flags, ct_now());
	if (lifetime != e->lifetime)
		e->lifetime = lifetime;
}

static __always_inline bool ct_alive(const struct ct_entry *e)
{
	return e->lifetime > ct_now();
}

static __always_inline bool is_tcp_syn(const struct pkt4 *p)
{
	return p->proto == IPPROTO_TCP && (p->tcp_flags & (TCP_F_SYN | TCP_F_ACK)) == TCP_F_SYN;
}

/* Looks up the packet as seen by an endpoint in direction dir (CT_EGRESS or CT_INGRESS); fills
 * key with the forward tuple, which is what ct4_create stores for a new flow. */
static __always_inline int ct4_lookup(const struct pkt4 *p, __u8 dir, struct ct4_key *key,
				      struct ct_entry **entry)
{
	struct ct4_key rkey = {
		.saddr = p->daddr, .daddr = p->saddr, .sport = p->dport, .dport = p->sport,
		.proto = p->proto, .dir = dir ^ 1,
	};
	struct ct_entry *e;

	key->saddr = p->saddr;
	key->daddr = p->daddr;
	key->sport = p->sport;
	key->dport = p->dport;
	key->proto = p->proto;
	key->dir = dir;
	key->pad = 0;

	e = bpf_map_lookup_elem(&fn_ct4, key);
	if (e && ct_alive(e)) {
		*entry = e;
		if (is_tcp_syn(p) && (e->flags & CT_F_CLOSING))
			return CT_REOPENED;
		return CT_ESTABLISHED;
	}
	e = bpf_map_lookup_elem(&fn_ct4, &rkey);
	if (e && ct_alive(e)) {
		*entry = e;
		return CT_REPLY;
	}
	return CT_NEW;
}

static __always_inline int ct4_create(const struct ct4_key *key, const struct pkt4 *p, __u32 len,
				      __u16 rev_nat_id, __u32 backend_id, __u32 remote_identity)
{
	struct ct_entry e = {
		.packets = 1,
		.bytes = len,
		.backend_id = backend_id,
		.rev_nat_id = rev_nat_id,
		.tcp_flags = p->tcp_flags,
		.remote_identity = remote_identity,
	};

	if (p->tcp_flags & (TCP_F_FIN | TCP_F_RST))
		e.flags |= CT_F_CLOSING;
	e.lifetime = ct_lifetime(p, e.flags, ct_now());
	if (bpf_map_update_elem(&fn_ct4, key, &e, BPF_ANY) < 0)
		return DROP_CT_CREATE_FAILED;
	return 0;
}

#endif /* FLEETNET_CONNTRACK_H */
