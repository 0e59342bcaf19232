"""The streaming pod subresources: ``pods/log`` (plain text, optionally followed) and
``pods/exec`` (a WebSocket with kube's channel protocol, ``v5.channel.k8s.io``).

On a real cluster the API server hands both to the kubelet; a local cluster's pods are processes in
network namespaces on this host, so the server reads the log file the agent's kubelet writes and
runs the command in the pod's namespace itself (``ip netns exec``, which also applies the pod's
``/etc/netns`` files such as ``hosts``).

Exec frames: the first byte is the channel — 0 stdin, 1 stdout, 2 stderr, 3 the final Status, 4
terminal resize; on v5 a client frame ``[255, 0]`` closes stdin.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import WSMsgType, web

from fleetnet.kube import status as st

if TYPE_CHECKING:
    from fleetnet.kube.apiserver.call import Call
    from fleetnet.kube.apiserver.storage import Storage


class _Config(Protocol):
    @property
    def cluster(self) -> str: ...
    @property
    def logs_dir(self) -> Path: ...
    @property
    def fleet_prefix(self) -> str: ...


class ApiServer(Protocol):
    """What the streams read of the server: its store (the pod) and where its pods live."""

    @property
    def cfg(self) -> _Config: ...
    @property
    def storage(self) -> Storage: ...


PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
FOLLOW_POLL = 0.2  # how often a followed log is checked for new lines and for its pod's deletion


def success_status() -> dict[str, Any]:
    return {"metadata": {}, "status": "Success"}


def exit_status(command: list[str], code: int) -> dict[str, Any]:
    return {
        "metadata": {},
        "status": "Failure",
        "message": (
            f"command terminated with non-zero exit code: error executing command {_go_list(command)}, exit code {code}"
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def failure_status(message: str) -> dict[str, Any]:
    return {"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError", "code": 500}


def not_running_error(phase: str | None, container: str) -> st.ApiError | None:
    """What kube answers an exec into a pod that runs nothing: the API server refuses finished pods
    itself; any other phase reaches a kubelet that has no such container yet."""
    if phase == "Running":
        return None
    if phase in ("Succeeded", "Failed"):
        return st.bad_request(f"cannot exec into a container in a completed pod; current phase is {phase}")
    return st.bad_request(f'unable to upgrade connection: container not found ("{container}")')


def not_found_status(command: str) -> dict[str, Any]:
    return failure_status(f'failed to exec in container: exec: "{command}": executable file not found in $PATH')


def _go_list(items: list[str]) -> str:
    return "[" + " ".join(items) + "]"


def frame(channel: int, data: bytes) -> bytes:
    return bytes([channel]) + data


def tail(data: bytes, lines: int | None, limit: int | None) -> bytes:
    """The last ``lines`` lines of ``data``, then at most ``limit`` bytes of that (kube's order)."""
    if lines is not None:
        if lines <= 0:
            data = b""
        else:
            parts = data.splitlines(keepends=True)
            data = b"".join(parts[-lines:])
    if limit is not None:
        data = data[:limit]
    return data


def _int(q: Any, name: str) -> int | None:
    v = q.get(name)
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError:
        raise st.bad_request(f"{name}: invalid value {v!r}: must be an integer") from None


def _pod(server: ApiServer, call: Call) -> dict[str, Any]:
    ns, name = call.info.namespace or "default", call.info.name or ""
    e = server.storage.get(f"/registry/pods/{ns}/{name}")
    if e is None:
        raise st.not_found("pods", "", name)
    return dict(e.obj)


def _container(pod: dict[str, Any], asked: str | None) -> str:
    names = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
    pod_name = pod["metadata"]["name"]
    if asked:
        if asked not in names:
            raise st.bad_request(f"container {asked} is not valid for pod {pod_name}")
        return asked
    if not names:
        raise st.bad_request(f"a container name must be specified for pod {pod_name}")
    return names[0]


async def handle(server: ApiServer, request: web.Request, call: Call) -> web.StreamResponse:
    if call.info.subresource == "log":
        return await logs(server, request, call)
    return await exec_(server, request, call)


# ------------------------------------------------------------------ log


async def logs(server: ApiServer, request: web.Request, call: Call) -> web.StreamResponse:
    pod = _pod(server, call)
    _container(pod, call.query.get("container"))
    ns, name = pod["metadata"].get("namespace", "default"), pod["metadata"]["name"]
    path = Path(server.cfg.logs_dir) / f"{ns}_{name}.log"
    lines, limit = _int(call.query, "tailLines"), _int(call.query, "limitBytes")
    data = path.read_bytes() if path.exists() else b""
    out = tail(data, lines, limit)
    if call.query.get("follow") != "true":
        return web.Response(body=out, content_type="text/plain")
    resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await resp.prepare(request)
    await resp.write(out)
    sent, offset = len(out), len(data)
    uid = pod["metadata"].get("uid")
    while limit is None or sent < limit:
        await asyncio.sleep(FOLLOW_POLL)  # a poll of the file, bounded by the client's connection
        e = server.storage.get(f"/registry/pods/{ns}/{name}")
        if e is None or e.obj["metadata"].get("uid") != uid:
            break
        size = path.stat().st_size if path.exists() else 0
        if size < offset:
            offset = 0  # the log was truncated (the container restarted)
        if size > offset:
            with path.open("rb") as f:
                f.seek(offset)
                chunk = f.read(size - offset)
            offset = size
            if limit is not None:
                chunk = chunk[: limit - sent]
            try:
                await resp.write(chunk)
            except (ConnectionResetError, RuntimeError):
                break
            sent += len(chunk)
        if request.transport is None or request.transport.is_closing():
            break
    with contextlib.suppress(ConnectionResetError, RuntimeError):
        await resp.write_eof()
    return resp


# ------------------------------------------------------------------ exec


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    # fleetnet's own tools (python -m fleetnet.workloads.probe, fleetnet probe) resolve in a pod
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "/usr/bin:/bin")
    return env


async def exec_(server: ApiServer, request: web.Request, call: Call) -> web.StreamResponse:
    from fleetnet.local import procs, topology

    pod = _pod(server, call)
    container = _container(pod, call.query.get("container"))
    command = list(request.query.getall("command", []))
    if not command:
        raise st.bad_request("you must specify at least 1 command")
    not_running = not_running_error((pod.get("status") or {}).get("phase"), container)
    if not_running is not None:
        raise not_running
    ns, name = pod["metadata"].get("namespace", "default"), pod["metadata"]["name"]
    netns = topology.pod_netns(server.cfg.fleet_prefix, server.cfg.cluster, ns, name)
    ws = web.WebSocketResponse(protocols=PROTOCOLS, max_msg_size=0)
    if not ws.can_prepare(request).ok:
        raise st.bad_request("Upgrade request required: exec needs a WebSocket (v5.channel.k8s.io)")
    await ws.prepare(request)
    if not os.path.exists(os.path.join(procs.NETNS_DIR, netns)):
        # ip netns exec would exit 1 here, which kubectl would print as the command's own exit code
        await _finish(ws, failure_status(f"failed to exec in container: network namespace {netns} does not exist"))
        return ws
    want_stdin = call.query.get("stdin") in ("true", "1")
    try:
        proc = await asyncio.create_subprocess_exec(
            "ip",
            "netns",
            "exec",
            netns,
            *command,
            stdin=asyncio.subprocess.PIPE if want_stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=_environment(),
        )
    except OSError as e:
        await _finish(ws, failure_status(f"failed to run ip netns exec: {e.strerror}"))
        return ws
    pumps = [
        asyncio.create_task(_pump_out(proc.stdout, ws, STDOUT)),
        asyncio.create_task(_pump_out(proc.stderr, ws, STDERR)),
    ]
    reader = asyncio.create_task(_pump_in(ws, proc, want_stdin))
    code = await proc.wait()
    await asyncio.gather(*pumps, return_exceptions=True)
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reader
    if code == 0:
        status = success_status()
    elif not _exists_in_path(command[0]):
        # ip netns exec exits 1 or 255 when execvp fails, so the exit code cannot tell this apart
        status = not_found_status(command[0])
    else:
        status = exit_status(command, code)
    await _finish(ws, status)
    return ws


def _exists_in_path(cmd: str) -> bool:
    import shutil

    if "/" in cmd:
        return os.access(cmd, os.X_OK)
    return shutil.which(cmd, path=_environment()["PATH"]) is not None


async def _finish(ws: web.WebSocketResponse, status: dict[str, Any]) -> None:
    with contextlib.suppress(ConnectionResetError, RuntimeError):
        await ws.send_bytes(frame(ERROR, json.dumps(status).encode()))
        await ws.close()


async def _pump_out(stream: asyncio.StreamReader | None, ws: web.WebSocketResponse, channel: int) -> None:
    if stream is None:
        return
    while True:
        chunk = await stream.read(32 * 1024)
        if not chunk:
            return
        try:
            await ws.send_bytes(frame(channel, chunk))
        except (ConnectionResetError, RuntimeError):
            return  # the client went away; the process still runs to its end


async def _pump_in(ws: web.WebSocketResponse, proc: asyncio.subprocess.Process, want_stdin: bool) -> None:
    async for msg in ws:
        if msg.type != WSMsgType.BINARY or not msg.data:
            continue
        channel, data = msg.data[0], msg.data[1:]
        if channel == STDIN and want_stdin and proc.stdin is not None:
            proc.stdin.write(data)
            with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                await proc.stdin.drain()
        elif channel == CLOSE and data[:1] == bytes([STDIN]) and proc.stdin is not None:
            proc.stdin.close()
    # the client closed the connection: what it started should not outlive it
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
