/* SPDX-License-Identifier: GPL-2.0 */
/* Shared by every header: kernel includes, drop reasons and the parsed view of one IPv4 packet.
 *
 * Drop reasons are negative and reuse Cilium's numbers (bpf/lib/common.h), so that a reader who
 * knows `cilium monitor` recognises them; the metrics map is indexed by -reason (0 = forwarded).
 */
#ifndef FLEETNET_COMMON_H
#define FLEETNET_COMMON_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <stddef.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define REASON_FORWARDED	0
#define DROP_INVALID_SIP	-132	/* source IP is not the endpoint behind this veth */
#define DROP_POLICY		-133	/* no allow entry matched */
#define DROP_INVALID		-134	/* malformed IPv4 header */
#define DROP_CT_INVALID		-135	/* L4 header too short to track (Cilium: DROP_CT_INVALID_HDR) */
#define DROP_WRITE_ERROR	-141	/* a NAT rewrite or checksum fix failed */
#define DROP_CT_CREATE_FAILED	-155	/* the conntrack map refused a new entry */
#define DROP_NO_SERVICE_BACKEND	-158	/* service without a usable backend (Cilium: DROP_NO_SERVICE) */
#define DROP_POLICY_DENY	-181	/* a deny entry matched */

/* Cilium's reserved identity for addresses the ipcache does not know. */
#define WORLD_ID		2

#define TCP_F_FIN		0x01
#define TCP_F_SYN		0x02
#define TCP_F_RST		0x04
#define TCP_F_ACK		0x10

#define IPV4_CSUM_OFF		(ETH_HLEN + offsetof(struct iphdr, check))
#define IPV4_SADDR_OFF		(ETH_HLEN + offsetof(struct iphdr, saddr))
#define IPV4_DADDR_OFF		(ETH_HLEN + offsetof(struct iphdr, daddr))

/* What the programs need from one packet; addresses and ports stay in network byte order. */
struct pkt4 {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u32 l4_off;
	__u8 proto;
	__u8 tcp_flags;
	bool has_ports;	/* TCP or UDP with its header present (not a later fragment) */
};

/* Returns 1 for a packet that is not IPv4 (ARP, IPv6: left alone), 0 when parsed, or a DROP_*. */
static __always_inline int pkt4_parse(struct __sk_buff *skb, struct pkt4 *p)
{
	struct iphdr ip;
	__u8 l4[14];

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return 1;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
		return DROP_INVALID;
	if (ip.version != 4 || ip.ihl < 5)
		return DROP_INVALID;
	p->saddr = ip.saddr;
	p->daddr = ip.daddr;
	p->proto = ip.protocol;
	p->l4_off = ETH_HLEN + ip.ihl * 4;
	p->sport = 0;
	p->dport = 0;
	p->tcp_flags = 0;
	p->has_ports = false;
	if (ip.frag_off & bpf_htons(0x1fff))
		return 0;
	if (ip.protocol == IPPROTO_TCP) {
		if (bpf_skb_load_bytes(skb, p->l4_off, l4, 14) < 0)
			return DROP_CT_INVALID;
		p->tcp_flags = l4[13];
	} else if (ip.protocol == IPPROTO_UDP) {
		if (bpf_skb_load_bytes(skb, p->l4_off, l4, 4) < 0)
			return DROP_CT_INVALID;
	} else {
		return 0;
	}
	__builtin_memcpy(&p->sport, &l4[0], 2);
	__builtin_memcpy(&p->dport, &l4[2], 2);
	p->has_ports = true;
	return 0;
}

/* Rewrites the destination (dst) or source address and port of a parsed TCP/UDP packet and fixes
 * the IPv4 and L4 checksums incrementally (they also stay right for CHECKSUM_PARTIAL skbs). */
static __always_inline int pkt4_rewrite(struct __sk_buff *skb, struct pkt4 *p, bool dst,
					__be32 nip, __be16 nport)
{
	__be32 oip = dst ? p->daddr : p->saddr;
	__be16 oport = dst ? p->dport : p->sport;
	__u32 csum_off = p->l4_off + (p->proto == IPPROTO_TCP ? offsetof(struct tcphdr, check)
							      : offsetof(struct udphdr, check));
	/* A UDP checksum of 0 means "none" and must stay so. */
	__u64 mangled = p->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;

	if (oip != nip) {
		if (bpf_l4_csum_replace(skb, csum_off, oip, nip, mangled | BPF_F_PSEUDO_HDR | 4) < 0)
			return DROP_WRITE_ERROR;
		if (bpf_l3_csum_replace(skb, IPV4_CSUM_OFF, oip, nip, 4) < 0)
			return DROP_WRITE_ERROR;
		if (bpf_skb_store_bytes(skb, dst ? IPV4_DADDR_OFF : IPV4_SADDR_OFF, &nip, 4, 0) < 0)
			return DROP_WRITE_ERROR;
	}
	if (oport != nport) {
		if (bpf_l4_csum_replace(skb, csum_off, oport, nport, mangled | 2) < 0)
			return DROP_WRITE_ERROR;
		if (bpf_skb_store_bytes(skb, p->l4_off + (dst ? 2 : 0), &nport, 2, 0) < 0)
			return DROP_WRITE_ERROR;
	}
	if (dst) {
		p->daddr = nip;
		p->dport = nport;
	} else {
		p->saddr = nip;
		p->sport = nport;
	}
	return 0;
}

#endif /* FLEETNET_COMMON_H */
