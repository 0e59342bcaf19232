"""The real kubectl against a local cluster, as a user drives it after `fleetnet member get-credentials`.

One fleet for the whole module (a cluster takes seconds to make); each test uses its own namespace
so they do not see each other's objects.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.apiserver import KUBECTL
from tests.support.fleet import TestFleet
from tests.support.names import unique
from tests.support.wait import wait_for

pytestmark = pytest.mark.root

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


class Kubectl:
    def __init__(self, kubeconfig: Path, cache: Path) -> None:
        self.kubeconfig = kubeconfig
        self.cache = cache

    def argv(self, *args: str) -> list[str]:
        return [KUBECTL, "--kubeconfig", str(self.kubeconfig), "--context", "c1", "--cache-dir", str(self.cache), *args]

    def run(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        p = subprocess.run(self.argv(*args), capture_output=True, text=True, input=input, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
        return p

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)


@pytest.fixture(scope="module")
def fleet() -> Iterator[TestFleet]:
    f = TestFleet()
    try:
        f.up(1, nodes=2)
        yield f
    finally:
        f.close()
        assert f.leftovers() == []


@pytest.fixture(scope="module")
def kubectl(fleet: TestFleet) -> Kubectl:
    kc = fleet.home / "user-kubeconfig"
    out = fleet.run("member", "get-credentials", "c1", "--file", str(kc))
    assert f'Merged "c1" as current context in {kc}' in out.stdout
    assert oct(kc.stat().st_mode & 0o777) == "0o600"
    doc = yaml.safe_load(kc.read_text())
    assert doc["current-context"] == "c1" and [c["name"] for c in doc["contexts"]] == ["c1"]
    return Kubectl(kc, fleet.home / "kubectl-cache")


@pytest.fixture
def ns(kubectl: Kubectl) -> Iterator[str]:
    # unique() keeps names short for links; a namespace may be longer, and earlier ones may still be
    # Terminating, so this one takes more random bits
    name = unique("ns") + secrets.token_hex(3)
    kubectl.run("create", "namespace", name)
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)


def test_get_credentials_merges_and_refuses_to_clobber(fleet: TestFleet, tmp_path: Path) -> None:
    kc = tmp_path / "config"
    kc.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "other", "cluster": {"server": "https://192.0.2.1:6443"}}],
                "users": [{"name": "other", "user": {"token": "x"}}],
                "contexts": [{"name": "other", "context": {"cluster": "other", "user": "other"}}],
                "current-context": "other",
            }
        )
    )
    env = dict(os.environ, KUBECONFIG=str(kc))
    p = subprocess.run(
        [str(Path(KUBECTL).with_name("fleetnet")), "member", "get-credentials", "c1"],
        capture_output=True,
        text=True,
        env={**env, "FLEETNET_HOME": str(fleet.home)},
    )
    assert p.returncode == 0, p.stderr
    doc = yaml.safe_load(kc.read_text())
    assert sorted(c["name"] for c in doc["contexts"]) == ["c1", "other"] and doc["current-context"] == "c1"
    kc.write_text(kc.read_text().replace("https://127.0.0.1", "https://127.0.0.2", 1))
    p = subprocess.run(
        [str(Path(KUBECTL).with_name("fleetnet")), "member", "get-credentials", "c1"],
        capture_output=True,
        text=True,
        env={**env, "FLEETNET_HOME": str(fleet.home)},
    )
    assert p.returncode == 1 and "--overwrite-existing" in p.stderr


def test_nodes_pods_and_api_resources(kubectl: Kubectl) -> None:
    out = kubectl.run("get", "nodes").stdout.splitlines()
    assert out[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert [line.split()[1] for line in out[1:]] == ["Ready", "Ready"]
    assert kubectl.run("get", "nodes,pods", "-A").returncode == 0
    res = kubectl.run("api-resources").stdout
    for line in ("pods", "po", "deployments", "ciliumnetworkpolicies", "cnp", "endpointslices"):
        assert line in res
    lst = kubectl.json("get", "pods", "-A")
    assert lst["kind"] == "List" and isinstance(lst["items"], list)


def test_apply_twice_server_side_diff(kubectl: Kubectl, ns: str) -> None:
    first = kubectl.run("apply", "-n", ns, "-f", str(EXAMPLES / "echo.yaml")).stdout
    assert "deployment.apps/echo created" in first and "pod/client created" in first
    again = kubectl.run("apply", "-n", ns, "-f", str(EXAMPLES / "echo.yaml")).stdout
    assert "deployment.apps/echo unchanged" in again and "pod/client unchanged" in again
    diff = kubectl.run("diff", "-n", ns, "-f", str(EXAMPLES / "echo.yaml"), check=False)
    assert diff.returncode == 0, diff.stdout + diff.stderr
    changed = (EXAMPLES / "echo.yaml").read_text().replace("replicas: 1", "replicas: 2")
    diff = kubectl.run("diff", "-n", ns, "-f", "-", input=changed, check=False)
    assert diff.returncode == 1 and "+  replicas: 2" in diff.stdout
    ssa = kubectl.run("apply", "--server-side", "-n", ns, "-f", "-", input=changed).stdout
    assert "deployment.apps/echo serverside-applied" in ssa
    assert kubectl.json("get", "deploy", "echo", "-n", ns)["spec"]["replicas"] == 2


def test_deployment_lifecycle(kubectl: Kubectl, ns: str) -> None:
    kubectl.run("apply", "-n", ns, "-f", str(EXAMPLES / "echo.yaml"))
    kubectl.run("wait", "-n", ns, "--for=condition=Available", "deploy/echo", "--timeout=90s")
    kubectl.run("rollout", "status", "-n", ns, "deploy/echo", "--timeout=90s")
    kubectl.run("scale", "-n", ns, "deploy/echo", "--replicas", "4")
    wait_for(
        lambda: kubectl.json("get", "deploy", "echo", "-n", ns).get("status", {}).get("readyReplicas") == 4,
        timeout=90,
        what="4 ready replicas",
    )
    wide = kubectl.run("get", "pods", "-n", ns, "-o", "wide", "-l", "app=echo").stdout.splitlines()
    assert wide[0].split()[:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    assert len(wide) == 5 and all(" Running " in line for line in wide[1:])
    before = {p["metadata"]["name"] for p in kubectl.json("get", "pods", "-n", ns, "-l", "app=echo")["items"]}
    kubectl.run("rollout", "restart", "-n", ns, "deploy/echo")
    kubectl.run("rollout", "status", "-n", ns, "deploy/echo", "--timeout=120s")
    wait_for(
        lambda: (
            not (
                before
                & {p["metadata"]["name"] for p in kubectl.json("get", "pods", "-n", ns, "-l", "app=echo")["items"]}
            )
        ),
        timeout=90,
        what="old pods replaced",
    )
    jp = kubectl.run("get", "deploy", "echo", "-n", ns, "-o", "jsonpath={.spec.replicas}").stdout
    assert jp == "4"
    assert yaml.safe_load(kubectl.run("get", "deploy", "echo", "-n", ns, "-o", "yaml").stdout)["kind"] == "Deployment"


def test_watch_sees_a_pod_come_and_go(kubectl: Kubectl, ns: str) -> None:
    w = subprocess.Popen(
        kubectl.argv("get", "pods", "-n", ns, "-w", "--output-watch-events", "--request-timeout=60s"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0)  # nothing to wait for: the watch lists first, so the pod shows either way
        kubectl.run("run", "w1", "-n", ns, "--image=fleetnet/client")
        kubectl.run("delete", "pod", "w1", "-n", ns)
        lines: list[str] = []
        assert w.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = w.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.split()[:2] == ["DELETED", "w1"]:
                break
        kinds = [line.split()[0] for line in lines if "w1" in line]
        assert kinds[0] == "ADDED" and kinds[-1] == "DELETED", lines
    finally:
        w.kill()
        w.wait()


def test_exec_exit_codes_stdin_and_logs(kubectl: Kubectl, ns: str) -> None:
    kubectl.run("run", "box", "-n", ns, "--image=fleetnet/client")
    kubectl.run("wait", "-n", ns, "--for=condition=Ready", "pod/box", "--timeout=60s")
    p = kubectl.run("exec", "box", "-n", ns, "--", "sh", "-c", "exit 3", check=False)
    assert p.returncode == 3
    p = kubectl.run("exec", "-i", "box", "-n", ns, "--", "cat", input="hello\n")
    assert p.stdout == "hello\n"
    p = kubectl.run("exec", "box", "-n", ns, "--", "sh", "-c", "echo out; echo err >&2")
    assert (p.stdout, p.stderr) == ("out\n", "err\n")
    kubectl.run(
        "run", "talker", "-n", ns, "--image=busybox", "--", "sh", "-c", "echo line-1; sleep 2; echo line-2; sleep 3600"
    )
    kubectl.run("wait", "-n", ns, "--for=condition=Ready", "pod/talker", "--timeout=60s")
    f = subprocess.Popen(kubectl.argv("logs", "-f", "talker", "-n", ns), stdout=subprocess.PIPE, text=True)
    try:
        assert f.stdout is not None
        assert f.stdout.readline() == "line-1\n"
        assert f.stdout.readline() == "line-2\n"
    finally:
        f.kill()
        f.wait()


def test_label_annotate_overwrite(kubectl: Kubectl, ns: str) -> None:
    kubectl.run("run", "lab", "-n", ns, "--image=fleetnet/client")
    kubectl.run("label", "pod", "lab", "-n", ns, "tier=web")
    p = kubectl.run("label", "pod", "lab", "-n", ns, "tier=db", check=False)
    assert p.returncode != 0 and "already has a value (web)" in p.stderr
    kubectl.run("label", "pod", "lab", "-n", ns, "tier=db", "--overwrite")
    kubectl.run("annotate", "pod", "lab", "-n", ns, "note=a")
    kubectl.run("annotate", "pod", "lab", "-n", ns, "note=b", "--overwrite")
    md = kubectl.json("get", "pod", "lab", "-n", ns)["metadata"]
    assert md["labels"]["tier"] == "db" and md["annotations"]["note"] == "b"


def test_cilium_policies_through_kubectl(kubectl: Kubectl, ns: str) -> None:
    policy = (EXAMPLES / "allow-only-from-c2.yaml").read_text().replace("namespace: demo", f"namespace: {ns}")
    kubectl.run("apply", "-f", "-", input=policy)
    out = kubectl.run("get", "cnp", "-A").stdout
    assert "allow-only-from-c2" in out and ns in out


def test_bad_input_is_refused_with_the_real_message_and_nothing_written(kubectl: Kubectl, ns: str) -> None:
    bad_name = (
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: Bad_Name, namespace: {ns}}}\n"
        "spec: {containers: [{name: c, image: x}]}\n"
    )
    p = kubectl.run("apply", "-f", "-", input=bad_name, check=False)
    assert p.returncode == 1
    assert (
        'The Pod "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain'
        in p.stderr
    )
    unknown = (
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: ok, namespace: {ns}}}\n"
        "spec: {containers: [{name: c, image: fleetnet/client}], foo: 1}\n"
    )
    p = kubectl.run("apply", "-f", "-", input=unknown, check=False)
    assert p.returncode == 1 and 'strict decoding error: unknown field "spec.foo"' in p.stderr
    p = kubectl.run("get", "pod", "nope", "-n", ns, check=False)
    assert p.returncode == 1 and 'pods "nope" not found' in p.stderr
    assert kubectl.json("get", "pods", "-n", ns)["items"] == []
    # create twice: AlreadyExists (kubectl create sends protobuf, as every Go client does)
    kubectl.run("create", "configmap", "cm", "-n", ns, "--from-literal=a=1")
    p = kubectl.run("create", "configmap", "cm", "-n", ns, "--from-literal=a=2", check=False)
    assert p.returncode == 1 and 'configmaps "cm" already exists' in p.stderr, p.stderr
    # replace with a stale resourceVersion: Conflict, and the newer write stays
    cm = kubectl.json("get", "configmap", "cm", "-n", ns)
    kubectl.run("label", "configmap", "cm", "-n", ns, "v=2")
    cm["data"] = {"a": "stale"}
    p = kubectl.run("replace", "-f", "-", input=json.dumps(cm), check=False)
    assert p.returncode == 1 and "the object has been modified" in p.stderr, p.stderr
    assert kubectl.json("get", "configmap", "cm", "-n", ns)["data"] == {"a": "1"}
    # a body over kube's 3 MiB limit: 413
    big = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big", "namespace": ns}}
    big["data"] = {"x": "y" * (3 * 1024 * 1024 + 10)}
    p = kubectl.run("create", "-f", "-", input=json.dumps(big), check=False)
    assert p.returncode == 1 and "Request entity too large" in p.stderr, p.stderr[-500:]
    assert kubectl.run("get", "configmap", "big", "-n", ns, check=False).returncode == 1


def test_explain_and_typed_create(kubectl: Kubectl, ns: str) -> None:
    out = kubectl.run("explain", "deployment.spec.strategy").stdout
    assert "KIND:       Deployment" in out and "rollingUpdate" in out and "<DeploymentStrategy>" in out
    out = kubectl.run("explain", "pods.spec.containers.ports").stdout
    assert "containerPort" in out and "<integer> -required-" in out
    kubectl.run("create", "deployment", "web", "-n", ns, "--image=fleetnet/echo", "--replicas=2", "--port=8080")
    kubectl.run("create", "service", "clusterip", "web", "-n", ns, "--tcp=80:8080")
    kubectl.run("create", "secret", "generic", "pw", "-n", ns, "--from-literal=user=admin")
    d = kubectl.json("get", "deploy", "web", "-n", ns)
    assert d["spec"]["replicas"] == 2 and d["spec"]["template"]["spec"]["containers"][0]["image"] == "fleetnet/echo"
    kubectl.run("wait", "-n", ns, "--for=condition=Available", "deploy/web", "--timeout=90s")
    assert kubectl.json("get", "secret", "pw", "-n", ns)["data"] == {"user": "YWRtaW4="}


def test_delete_namespace_takes_its_contents(kubectl: Kubectl) -> None:
    name = unique("gone")
    kubectl.run("create", "namespace", name)
    kubectl.run("apply", "-n", name, "-f", str(EXAMPLES / "echo.yaml"))
    kubectl.run("delete", "namespace", name, "--timeout=120s")
    p = kubectl.run("get", "namespace", name, check=False)
    assert p.returncode == 1 and f'namespaces "{name}" not found' in p.stderr
