"""The pod log and exec streams: kube's channel framing, the Statuses kubectl reads back, and the
log endpoint of a real API server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleetnet.kube import status as st
from fleetnet.kube.apiserver import streams
from fleetnet.kube.client import KubeClient
from fleetnet.kube.resources import REGISTRY
from tests.support.apiserver import TestApiServer, running_apiserver


def test_frames_carry_their_channel_first() -> None:
    assert streams.frame(streams.STDOUT, b"hi") == b"\x01hi"
    assert streams.frame(streams.STDERR, b"") == b"\x02"
    assert streams.frame(streams.ERROR, b"{}")[0] == 3
    assert streams.PROTOCOLS == ("v5.channel.k8s.io", "v4.channel.k8s.io")


def test_statuses_read_as_kubelets() -> None:
    assert streams.success_status() == {"metadata": {}, "status": "Success"}
    assert streams.exit_status(["sh", "-c", "exit 3"], 3) == {
        "metadata": {},
        "status": "Failure",
        "message": "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
    }
    nf = streams.not_found_status("nope")
    assert nf["status"] == "Failure" and '"nope": executable file not found in $PATH' in nf["message"]


def test_exec_into_a_pod_that_runs_nothing() -> None:
    assert streams.not_running_error("Running", "c") is None
    pending = streams.not_running_error("Pending", "c")
    assert pending is not None and pending.code == 400
    assert pending.message == 'unable to upgrade connection: container not found ("c")'
    done = streams.not_running_error("Succeeded", "c")
    assert done is not None and "completed pod; current phase is Succeeded" in done.message


@pytest.mark.parametrize(
    "lines, limit, out",
    [
        (None, None, b"a\nb\nc\n"),
        (2, None, b"b\nc\n"),
        (0, None, b""),
        (10, None, b"a\nb\nc\n"),
        (None, 3, b"a\nb"),
        (2, 3, b"b\nc"),  # kube tails first, then limits
    ],
)
def test_tail_then_limit(lines: int | None, limit: int | None, out: bytes) -> None:
    assert streams.tail(b"a\nb\nc\n", lines, limit) == out


def test_unknown_container_is_a_bad_request() -> None:
    pod: dict[str, Any] = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}, {"name": "d"}]}}
    assert streams._container(pod, None) == "c"
    assert streams._container(pod, "d") == "d"
    with pytest.raises(st.ApiError) as e:
        streams._container(pod, "x")
    assert (e.value.code, e.value.message) == (400, "container x is not valid for pod p")


# ------------------------------------------------------------------ against a real server

PODS = REGISTRY.by_kind("Pod")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestApiServer]:
    with running_apiserver(tmp_path_factory.mktemp("streams")) as a:
        yield a


@pytest.fixture
def c(api: TestApiServer) -> Iterator[KubeClient]:
    client = KubeClient.from_kubeconfig(api.kubeconfig)
    yield client
    client.close()


def _pod(c: KubeClient, name: str) -> None:
    c.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "x"}]},
        }
    )


def _log_file(api: TestApiServer, name: str) -> Path:
    d = api.root / "logs"
    d.mkdir(exist_ok=True)
    return d / f"default_{name}.log"


def test_log_tail_lines(api: TestApiServer, c: KubeClient) -> None:
    _pod(c, "logp")
    path = "/api/v1/namespaces/default/pods/logp/log"
    assert c.request("GET", path) is None  # no log file yet: an empty body
    _log_file(api, "logp").write_text("one\ntwo\n")
    assert c.request("GET", path, params={"tailLines": "1"}) == "two\n"
    with pytest.raises(st.ApiError) as e:
        c.request("GET", path, params={"container": "x"})
    assert e.value.code == 400 and e.value.message == "container x is not valid for pod logp"
    with pytest.raises(st.ApiError) as e:
        c.request("GET", "/api/v1/namespaces/default/pods/nopod/log")
    assert e.value.code == 404 and e.value.message == 'pods "nopod" not found'


def test_log_follow_streams_appended_lines(api: TestApiServer, c: KubeClient) -> None:
    _pod(c, "follow")
    f = _log_file(api, "follow")
    f.write_text("a-line\n")

    def append() -> None:
        time.sleep(0.5)  # after the server has sent what the file holds
        with f.open("a") as out:
            out.write("b-line\n")

    t = threading.Thread(target=append)
    t.start()
    # limitBytes ends the followed stream once the appended line is through
    out = c.request(
        "GET", "/api/v1/namespaces/default/pods/follow/log", params={"follow": "true", "limitBytes": "14"}, timeout=10
    )
    t.join()
    assert out == "a-line\nb-line\n"
