"""The conditions of a Terminating namespace."""

from __future__ import annotations

from fleetnet.plan.controllers.namespaces import TYPES, deletion_conditions


def test_conditions_say_what_remains_and_keep_transition_times() -> None:
    first = deletion_conditions([], {"pods.": 2, "configmaps.": 0}, {"example.com/x": 1}, [], 100)
    assert [c["type"] for c in first] == list(TYPES)
    by = {c["type"]: c for c in first}
    assert by["NamespaceContentRemaining"]["message"] == "Some resources are remaining: pods. has 2 resource instances"
    assert by["NamespaceFinalizersRemaining"]["message"] == (
        "Some content in the namespace has finalizers remaining: example.com/x in 1 resource instances"
    )
    assert (by["NamespaceDeletionDiscoveryFailure"]["status"], by["NamespaceDeletionDiscoveryFailure"]["reason"]) == (
        "False",
        "ResourcesDiscovered",
    )
    later = {c["type"]: c for c in deletion_conditions(first, {}, {}, [], 200)}
    assert (later["NamespaceContentRemaining"]["status"], later["NamespaceContentRemaining"]["reason"]) == (
        "False",
        "ContentRemoved",
    )
    assert (
        later["NamespaceContentRemaining"]["lastTransitionTime"]
        != by["NamespaceContentRemaining"]["lastTransitionTime"]
    )
    assert later["NamespaceDeletionDiscoveryFailure"] == by["NamespaceDeletionDiscoveryFailure"]
    failing = {c["type"]: c for c in deletion_conditions([], {}, {}, ["pods.: boom"], 0)}
    assert failing["NamespaceDeletionContentFailure"]["message"] == (
        "Failed to delete all resource types, 1 remaining: pods.: boom"
    )
