// SPDX-License-Identifier: GPL-2.0
/* The pod datapath, attached to the host side of each pod's veth in its node namespace.
 *
 *   from_container  tc/tcx ingress of the host veth: packets leaving the pod.
 *                   Service DNAT (lib/lb.h), then egress policy of the pod on the translated
 *                   packet, so that policy sees the backend and not the VIP.
 *   to_container    tc/tcx egress of the host veth: packets entering the pod.
 *                   Reverse NAT of replies to a VIP, then ingress policy of the pod.
 *
 * Both consult one conntrack map (lib/conntrack.h): a packet of a known flow, or a reply to one,
 * passes without a policy lookup. Everything per endpoint comes from the endpoints map
 * (lib/endpoint.h) because one object serves every veth of the cluster.
 */
#include "lib/common.h"
#include "lib/metrics.h"
#include "lib/endpoint.h"
#include "lib/ipcache.h"
#include "lib/conntrack.h"
#include "lib/lb.h"
#include "lib/policy.h"

/* Never read here: the loader stores the SHA-256 of the object that made the pinned programs,
 * so that an agent started with a newer object knows to load it against the same maps. */
struct build_info {
	__u8 sha256[32];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct build_info);
} fn_build SEC(".maps");

SEC("tc")
int from_container(struct __sk_buff *skb)
{
	struct endpoint_info *ep;
	struct ct_entry *entry = NULL;
	struct lb4_service *svc;
	struct lb4_key svc_key;
	struct ct4_key ct_key;
	struct pkt4 p;
	__u32 remote_identity;
	__u16 endpoint_id;
	__u16 rev_nat_id = 0;
	__u8 ep_flags;
	int ret;

	ret = pkt4_parse(skb, &p);
	if (ret > 0)
		return TC_ACT_OK;
	if (ret < 0)
		return send_drop(skb, ret);

	ep = lookup_endpoint(p.saddr);
	if (!ep || ep->ifindex != skb->ifindex)
		return send_drop(skb, DROP_INVALID_SIP);
	endpoint_id = ep->endpoint_id;
	ep_flags = ep->flags;
	if (!p.has_ports)
		return send_forward(skb);

	svc = lb4_lookup_service(&p, &svc_key);
	if (svc) {
		ret = lb4_local(skb, &p, &svc_key, svc, &rev_nat_id);
		if (ret < 0)
			return send_drop(skb, ret);
	}

	switch (ct4_lookup(&p, CT_EGRESS, &ct_key, &entry)) {
	case CT_ESTABLISHED:
		ct_refresh(entry, &p, skb->len, false);
		if (rev_nat_id && entry->rev_nat_id != rev_nat_id)
			entry->rev_nat_id = rev_nat_id;
		return send_forward(skb);
	case CT_REPLY:
		ct_refresh(entry, &p, skb->len, true);
		return send_forward(skb);
	default:
		break;
	}

	remote_identity = ipcache_identity(p.daddr);
	if (ep_flags & EP_F_EGRESS_ENFORCED) {
		ret = policy_can_access(endpoint_id, POLICY_EGRESS, remote_identity, p.dport, p.proto);
		if (ret < 0)
			return send_drop(skb, ret);
	}
	ret = ct4_create(&ct_key, &p, skb->len, rev_nat_id, 0, remote_identity);
	if (ret < 0)
		return send_drop(skb, ret);
	return send_forward(skb);
}

SEC("tc")
int to_container(struct __sk_buff *skb)
{
	struct endpoint_info *ep;
	struct ct_entry *entry = NULL;
	struct ct4_key ct_key;
	struct pkt4 p;
	__u32 remote_identity;
	__u16 rev_nat_id;
	int ret;

	ret = pkt4_parse(skb, &p);
	if (ret > 0)
		return TC_ACT_OK;
	if (ret < 0)
		return send_drop(skb, ret);
	if (!p.has_ports)
		return send_forward(skb);

	switch (ct4_lookup(&p, CT_INGRESS, &ct_key, &entry)) {
	case CT_ESTABLISHED:
		ct_refresh(entry, &p, skb->len, false);
		return send_forward(skb);
	case CT_REPLY:
		rev_nat_id = entry->rev_nat_id;
		ct_refresh(entry, &p, skb->len, true);
		if (rev_nat_id) {
			ret = lb4_rev_nat(skb, &p, rev_nat_id);
			if (ret < 0)
				return send_drop(skb, ret);
		}
		return send_forward(skb);
	default:
		break;
	}

	ep = lookup_endpoint(p.daddr);
	if (!ep)
		return send_forward(skb);	/* not addressed to the pod: its stack decides */
	remote_identity = ipcache_identity(p.saddr);
	if (ep->flags & EP_F_INGRESS_ENFORCED) {
		ret = policy_can_access(ep->endpoint_id, POLICY_INGRESS, remote_identity, p.dport, p.proto);
		if (ret < 0)
			return send_drop(skb, ret);
	}
	ret = ct4_create(&ct_key, &p, skb->len, 0, 0, remote_identity);
	if (ret < 0)
		return send_drop(skb, ret);
	return send_forward(skb);
}

char LICENSE[] SEC("license") = "GPL";
