/* SPDX-License-Identifier: GPL-2.0 */
/* Per-CPU packet and byte counters by verdict: index 0 = forwarded, index -DROP_* = that drop.
 * Per-CPU so that counting never contends; the control plane sums the CPUs when it reads. */
#ifndef FLEETNET_METRICS_H
#define FLEETNET_METRICS_H

#include "common.h"

#define METRICS_MAX		256

struct metrics_value {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, METRICS_MAX);
	__type(key, __u32);
	__type(value, struct metrics_value);
} fn_metrics SEC(".maps");

static __always_inline void metrics_count(struct __sk_buff *skb, int reason)
{
	__u32 key = reason < 0 ? -reason : reason;
	struct metrics_value *v = bpf_map_lookup_elem(&fn_metrics, &key);

	if (v) {
		v->packets += 1;
		v->bytes += skb->len;
	}
}

static __always_inline int send_drop(struct __sk_buff *skb, int reason)
{
	metrics_count(skb, reason);
	return TC_ACT_SHOT;
}

static __always_inline int send_forward(struct __sk_buff *skb)
{
	metrics_count(skb, REASON_FORWARDED);
	return TC_ACT_OK;
}

#endif /* FLEETNET_METRICS_H */
