"""The eBPF datapath of local clusters, and the only package that touches BPF.

``bpf/`` holds the C (one entry file, ``bpf_lxc.c``, and one header per feature owning its maps),
compiled once by :mod:`.build`; :mod:`.bpf` is the bpf(2) wrapper; :mod:`.maps` gives the maps
typed operations; :mod:`.loader` loads a cluster's programs and maps into a private bpffs and
attaches them to pod veths. An agent uses it as::

    mount_bpffs(home / "bpffs")
    dp = ClusterDatapath(home / "bpffs", "c1")
    dp.load()                                   # every start: reuses the pins if they exist
    dp.attach(node_netns, host_veth, EndpointInfo(endpoint_id, identity, pod_ip))
    dp.ipcache.upsert(pod_ip, identity, cluster_id)
    dp.services.sync({Frontend(vip, 80, "TCP"): [Backend(ip, 8080, cluster_id)]})
    dp.policy.replace_endpoint(endpoint_id, [PolicyEntry("ingress", identity, 80, 6)])
"""
