"""ServiceMaps against dict-backed maps (no root): whatever sequence of updates the control plane
makes, the maps end up holding exactly the desired services, nothing else, and the datapath
never reads a half-written service between two single-entry writes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from fleetnet.datapath.bpf import BpfMap
from fleetnet.datapath.maps import (
    REV_NAT_ID,
    Backend,
    Frontend,
    ServiceMaps,
    decode_lb4_service,
    encode_slot_key,
)


class World:
    """The four LB maps; checks after every single-entry write what the datapath could read."""

    def __init__(self) -> None:
        self.svc: dict[bytes, bytes] = {}
        self.slots: dict[bytes, bytes] = {}
        self.backends: dict[bytes, bytes] = {}
        self.revnat: dict[bytes, bytes] = {}

    def check(self) -> None:
        for key, value in self.svc.items():
            count, rev_nat_id, _ = decode_lb4_service(value)
            assert REV_NAT_ID.pack(rev_nat_id) in self.revnat
            for slot in range(count):
                bid = self.slots.get(encode_slot_key(key, slot))
                assert bid is not None, f"slot {slot} of a service with {count} is missing"
                assert bid in self.backends, "a slot names a backend that does not exist"


class FakeMap:
    """Speaks the part of BpfMap that ServiceMaps uses."""

    def __init__(self, world: World, data: dict[bytes, bytes]) -> None:
        self.world, self.data = world, data

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(list(self.data.items()))

    def keys(self) -> Iterator[bytes]:
        return iter(list(self.data))

    def __iter__(self) -> Iterator[bytes]:
        return self.keys()

    def update_batch(self, keys: Sequence[bytes], values: Sequence[bytes]) -> None:
        for k, v in zip(keys, values, strict=True):
            self.data[k] = v
            self.world.check()

    def delete_batch(self, keys: Sequence[bytes]) -> int:
        n = 0
        for k in keys:
            n += self.data.pop(k, None) is not None
            self.world.check()
        return n


def service_maps(world: World) -> ServiceMaps:
    maps = [FakeMap(world, d) for d in (world.svc, world.slots, world.backends, world.revnat)]
    return ServiceMaps(*maps)  # type: ignore[arg-type]


frontends = st.builds(Frontend, st.sampled_from(["10.96.0.1", "10.96.0.2", "10.96.0.3"]), st.sampled_from([80, 443]))
backends = st.builds(Backend, st.sampled_from(["10.1.0.2", "10.1.0.3", "10.2.0.2"]), st.sampled_from([80, 8080]))
states = st.dictionaries(frontends, st.lists(backends, max_size=5), max_size=4)


@settings(max_examples=60, deadline=None)
@given(st.lists(states, min_size=1, max_size=6), st.lists(st.tuples(frontends, st.lists(backends, max_size=4))))
def test_any_sequence_of_syncs_and_upserts_converges(
    desired_states: list[dict[Frontend, list[Backend]]], upserts: list[tuple[Frontend, list[Backend]]]
) -> None:
    world = World()
    sm = service_maps(world)
    for desired in desired_states:
        sm.sync(desired)
        assert sm.list_services() == desired
    model = dict(desired_states[-1])
    for frontend, bs in upserts:
        sm.upsert_service(frontend, bs)
        model[frontend] = bs
        assert sm.list_services() == model
    # A restarted writer reads the same state back and has nothing to do.
    again = service_maps(world)
    assert again.list_services() == model
    assert again.sync(model).added == again.sync(model).updated == 0
    again.sync({})
    assert world.svc == world.slots == world.backends == world.revnat == {}


def test_backends_are_shared_and_their_ids_are_not_reused_at_once() -> None:
    world = World()
    sm = service_maps(world)
    a, b = Frontend("10.96.0.1", 80), Frontend("10.96.0.2", 80)
    shared, other = Backend("10.1.0.2", 8080), Backend("10.1.0.3", 8080)
    sm.upsert_service(a, [shared])
    sm.upsert_service(b, [shared, other])
    ids = sm.backend_ids()
    assert sorted(ids.values()) == [shared, other] and len(world.backends) == 2
    assert sm.delete_service(a) and not sm.delete_service(a)
    assert sm.backend_ids() == ids  # b still uses it
    sm.upsert_service(b, [other])
    assert list(sm.backend_ids().values()) == [other]
    # Conntrack may still name the freed id: it must not lead to another backend soon.
    sm.upsert_service(a, [shared])
    old_id = next(i for i, be in ids.items() if be == shared)
    assert next(i for i, be in sm.backend_ids().items() if be == shared) > old_id
    assert sm.rev_nat_ids()[a] != sm.rev_nat_ids()[b]


def test_a_service_without_backends_stays_listed() -> None:
    sm = service_maps(World())
    f = Frontend("10.96.0.1", 53, "UDP")
    sm.upsert_service(f, [])
    assert sm.list_services() == {f: []}
    assert sm.get(f) == []


def test_types_match_the_real_map() -> None:
    # FakeMap mirrors these BpfMap methods; if BpfMap renames one, this fails first.
    for name in ("items", "keys", "update_batch", "delete_batch", "__iter__"):
        assert callable(getattr(BpfMap, name))
