"""A real API server, the controller manager in this process, and a stand-in kubelet, shared by a
test module; each test works in a namespace of its own."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest

from fleetnet.kube.client import KubeClient
from fleetnet.local.controllers import ControllerManager
from tests.local.controllers.kubelet import FakeKubelet
from tests.support.apiserver import TestApiServer, running_apiserver
from tests.support.names import unique

_SERIAL = itertools.count()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestApiServer]:
    with running_apiserver(tmp_path_factory.mktemp("api")) as a:
        yield a


@pytest.fixture(scope="module")
def factory(api: TestApiServer) -> Callable[[], KubeClient]:
    return lambda: KubeClient.from_kubeconfig(api.kubeconfig)


@pytest.fixture(scope="module")
def client(factory: Callable[[], KubeClient]) -> Iterator[KubeClient]:
    c = factory()
    yield c
    c.close()


@pytest.fixture(scope="module")
def manager(factory: Callable[[], KubeClient]) -> Iterator[ControllerManager]:
    m = ControllerManager(factory).start()
    assert m.wait_synced(20)
    yield m
    m.stop()


@pytest.fixture(scope="module")
def kubelet(factory: Callable[[], KubeClient]) -> Iterator[FakeKubelet]:
    k = FakeKubelet(factory).start()
    yield k
    k.stop()


@pytest.fixture
def ns(client: KubeClient, kubelet: FakeKubelet) -> Iterator[str]:
    name = f"{unique('t')}-{next(_SERIAL)}"  # unique() alone has one random byte per call
    client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    kubelet.ready = lambda pod: True
    kubelet.hold_deletions = False
    kubelet.poke()
