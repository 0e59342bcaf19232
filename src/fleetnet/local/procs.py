"""The one place that starts and ends processes: pods' workloads, etcd servers, agents.

A process is started detached (its own session, stdin from /dev/null, output to a log file) so
that it outlives the fleet daemon: the daemon may restart while pods, etcd and agents keep
running. What identifies a process is a ``ProcRecord`` (pid + kernel start time + argv), which
the daemon stores as JSON; ``is_alive`` and ``terminate`` compare the start time with
``/proc/<pid>/stat`` so that a pid the kernel has since given to another process is never
mistaken for ours, and ``fleetnet down`` can end everything from the recorded state even after a
crash.

How a process is put inside a pod or node: ``netlink.call_in_netns`` runs the start on a fresh
thread that has entered the network namespace, and the child is forked from that thread, so it is
born there (no ``preexec_fn``, which is unsafe in a threaded daemon). As ``ip netns exec`` does,
when ``/etc/netns/<ns>/`` holds files (``hosts``, for service names) that thread first gets a
private mount namespace in which those files are bind-mounted over their ``/etc`` counterparts;
the mounts are invisible to the rest of the host and vanish with the last process using them.

    SystemFailure (fleetnet.errors)
    └── ProcessFailure     a process could not be started, signalled or run
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

from fleetnet.errors import InvalidInput, SystemFailure
from fleetnet.local import netlink

T = TypeVar("T")

ETC_NETNS_DIR = "/etc/netns"
NETNS_DIR = "/run/netns"  # where named network namespaces are mounted (ip netns, local/netlink.py)

_CLONE_NEWNS = 0x00020000
_MS_BIND = 0x1000
_MS_REC = 0x4000
_MS_SLAVE = 1 << 19

_libc = ctypes.CDLL(None, use_errno=True)

# Children this process started and has not reaped yet. Kept so that an exited child is reaped
# (no zombies pile up in a long-running daemon) and Popen does not warn about it being dropped.
_children: dict[int, subprocess.Popen[bytes]] = {}
_children_lock = threading.Lock()
# Exit codes of reaped children, by pid and start time, so a supervisor (the kubelet) can say how a
# container ended. Bounded: only the most recent are kept.
_exit_codes: dict[tuple[int, int], int] = {}
_start_times: dict[int, int] = {}


class ProcessFailure(SystemFailure):
    """A process could not be started, signalled or run."""


@dataclass(frozen=True, slots=True)
class ProcRecord:
    """A started process: ``start_time`` is field 22 of ``/proc/<pid>/stat`` (clock ticks since boot).

    ``boot_id`` tells records from before a reboot apart, whose pid and start time may happen to
    match a process of the new boot (empty: unknown, only the start time is compared).
    """

    pid: int
    start_time: int
    argv: tuple[str, ...]
    boot_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "start_time": self.start_time, "argv": list(self.argv), "boot_id": self.boot_id}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProcRecord:
        try:
            pid, start, argv = data["pid"], data["start_time"], data["argv"]
            boot_id = data.get("boot_id", "")
        except (KeyError, TypeError, AttributeError) as e:
            raise InvalidInput(f"A process record needs pid, start_time and argv; got {data!r}.") from e
        if (
            not isinstance(pid, int)
            or not isinstance(start, int)
            or not isinstance(argv, list | tuple)
            or not all(isinstance(a, str) for a in argv)
            or not isinstance(boot_id, str)
        ):
            raise InvalidInput(f"A process record needs integer pid and start_time and list argv; got {data!r}.")
        return cls(pid=pid, start_time=start, argv=tuple(argv), boot_id=boot_id)


def _read_boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


_BOOT_ID = _read_boot_id()


# --- /proc -----------------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, start time) of ``pid`` or None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm (field 2) may hold spaces and parentheses: fields after it start after the last ')'.
    rest = raw[raw.rindex(b")") + 2 :].split()
    return rest[0].decode(), int(rest[19])


def records_in_netns(names: Iterable[str]) -> list[ProcRecord]:
    """Every process living in one of these named network namespaces (this process excepted): what
    is left of a fleet's pods and daemons when their own records are gone."""
    inodes = set()
    for name in names:
        try:
            inodes.add(os.stat(os.path.join(NETNS_DIR, name)).st_ino)
        except OSError:
            continue
    out: list[ProcRecord] = []
    if not inodes:
        return out
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            if os.stat(f"/proc/{entry}/ns/net").st_ino not in inodes:
                continue
        except OSError:
            continue
        st = _stat(int(entry))
        if st is not None:
            out.append(ProcRecord(pid=int(entry), start_time=st[1], argv=(), boot_id=_BOOT_ID))
    return out


def _matches(rec: ProcRecord) -> bool:
    if rec.boot_id and _BOOT_ID and rec.boot_id != _BOOT_ID:
        return False
    st = _stat(rec.pid)
    return st is not None and st[1] == rec.start_time and st[0] not in ("Z", "X")


def _record_exit(pid: int, code: int) -> None:
    start = _start_times.pop(pid, None)
    if start is not None:
        _exit_codes[(pid, start)] = code
        while len(_exit_codes) > 4096:
            _exit_codes.pop(next(iter(_exit_codes)))


def _reap(pid: int) -> None:
    with _children_lock:
        child = _children.get(pid)
        if child is not None and child.poll() is not None:
            del _children[pid]
            _record_exit(pid, child.returncode)


def _reap_finished() -> None:
    with _children_lock:
        for pid in [pid for pid, child in _children.items() if child.poll() is not None]:
            _record_exit(pid, _children.pop(pid).returncode)


def exit_code(rec: ProcRecord) -> int | None:
    """How a process this one started ended (negative: killed by that signal); None while it runs,
    or when it was not started by this process (an adopted container after a restart)."""
    _reap(rec.pid)
    with _children_lock:
        return _exit_codes.get((rec.pid, rec.start_time))


# --- namespaces ------------------------------------------------------------------------------------


def _overlay_etc(netns: str) -> None:
    """On the calling thread: a private mount namespace with /etc/netns/<netns>/* over /etc/*."""
    src_dir = os.path.join(ETC_NETNS_DIR, netns)
    try:
        entries = sorted(os.listdir(src_dir))
    except FileNotFoundError:
        return
    entries = [e for e in entries if os.path.exists(os.path.join("/etc", e))]
    if not entries:
        return

    def check(rc: int, what: str) -> None:
        if rc != 0:
            err = ctypes.get_errno()
            raise ProcessFailure(f"Could not {what} for network namespace {netns}: {os.strerror(err)}.")

    check(_libc.unshare(_CLONE_NEWNS), "make a private mount namespace")
    # Slave, not private: the host's later mounts (new /run/netns entries) still show up here.
    check(_libc.mount(b"none", b"/", None, _MS_SLAVE | _MS_REC, None), "stop mount propagation to the host")
    for entry in entries:
        src, dst = os.path.join(src_dir, entry), os.path.join("/etc", entry)
        check(_libc.mount(src.encode(), dst.encode(), b"none", _MS_BIND, None), f"bind-mount {src} over {dst}")


def _inside(netns: str | None, fn: Callable[[], T]) -> T:
    """Run ``fn`` where a child it forks is born inside ``netns`` (with the /etc overlay)."""
    if netns is None:
        return fn()

    def entered() -> T:
        _overlay_etc(netns)
        return fn()

    return netlink.call_in_netns(netns, entered)


# --- starting and ending ---------------------------------------------------------------------------


def _write_atomically(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def spawn(
    argv: Sequence[str],
    *,
    netns: str | None,
    log_path: str,
    pid_path: str,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    new_session: bool = True,
) -> ProcRecord:
    """Start ``argv`` detached (inside ``netns`` if given), output appended to ``log_path``.

    Writes the pid to ``pid_path`` and returns the record to store. The process keeps running
    when this process exits.
    """
    if not argv:
        raise InvalidInput("A process needs a command; argv is empty.")
    where = f" in network namespace {netns}" if netns else ""
    _reap_finished()
    try:
        os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
        log = open(log_path, "ab")  # noqa: SIM115 - handed to the child, closed right after
    except OSError as e:
        raise ProcessFailure(f"Could not open log file {log_path} for {argv[0]}: {e.strerror}.") from e
    try:

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=new_session,
                close_fds=True,
            )

        child = _inside(netns, start)
    except OSError as e:
        raise ProcessFailure(f"Could not start {argv[0]}{where}: {e.strerror}.") from e
    finally:
        log.close()
    st = _stat(child.pid)
    with _children_lock:
        _children[child.pid] = child
        if st is not None:
            _start_times[child.pid] = st[1]
    if st is None:  # cannot happen while unreaped; kept as a clear error over a KeyError
        raise ProcessFailure(f"{argv[0]}{where} vanished right after it started; see {log_path}.")
    rec = ProcRecord(pid=child.pid, start_time=st[1], argv=tuple(argv), boot_id=_BOOT_ID)
    try:
        _write_atomically(pid_path, f"{rec.pid}\n")
    except OSError as e:
        terminate(rec, timeout=1.0)
        raise ProcessFailure(f"Could not write pid file {pid_path} for {argv[0]}: {e.strerror}.") from e
    return rec


def own_record() -> ProcRecord:
    """This process's record, so that a process started any way (not by ``spawn``) can be ended later."""
    st = _stat(os.getpid())
    assert st is not None  # /proc/self always exists
    return ProcRecord(pid=os.getpid(), start_time=st[1], argv=tuple(sys.argv), boot_id=_BOOT_ID)


def is_alive(rec: ProcRecord) -> bool:
    """Whether the process of ``rec`` still runs (same pid and same start time, not a zombie)."""
    _reap(rec.pid)
    return _matches(rec)


def _wait_exit(pidfd: int, timeout: float) -> bool:
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(max(0, int(timeout * 1000))))


def terminate(rec: ProcRecord, timeout: float = 5.0) -> bool:
    """End the process of ``rec``: SIGTERM, then SIGKILL after ``timeout`` seconds.

    Only a process with the recorded start time is signalled, through a pidfd so that the pid
    cannot be reused between the check and the signal. Returns whether a process was ended.
    """
    try:
        pidfd = os.pidfd_open(rec.pid)
    except ProcessLookupError:
        _reap(rec.pid)
        return False
    except OSError as e:
        raise ProcessFailure(f"Could not open process {rec.pid} ({rec.argv[:1]}): {e.strerror}.") from e
    try:
        # The pidfd pins the process the pid names now; if its start time is ours, it is ours.
        if not _matches(rec):
            return False
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                signal.pidfd_send_signal(pidfd, sig)
            except ProcessLookupError:
                return True
            if _wait_exit(pidfd, wait):
                return True
        raise ProcessFailure(f"Process {rec.pid} ({' '.join(rec.argv[:2])}) did not end after SIGKILL.")
    finally:
        os.close(pidfd)
        _reap(rec.pid)


def exec_in_netns(netns: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> NoReturn:
    """Replace this process with ``argv`` running inside ``netns`` (for ``kubectl exec``)."""
    if not argv:
        raise InvalidInput("A process needs a command; argv is empty.")
    netlink.enter_netns(netns)
    _overlay_etc(netns)
    try:
        os.execvpe(argv[0], list(argv), dict(env) if env is not None else os.environ)
    except OSError as e:
        raise ProcessFailure(f"Could not run {argv[0]} in network namespace {netns}: {e.strerror}.") from e


def run(argv: Sequence[str], timeout: float, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` on the host (the demo's commands) to completion and capture its output."""
    return run_in_netns(None, argv, timeout, env=env)


def run_in_netns(
    netns: str | None,
    argv: Sequence[str],
    timeout: float,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` inside ``netns`` to completion and capture its output (text).

    A non-zero exit is returned, not raised; running past ``timeout`` seconds kills it and raises.
    """
    if not argv:
        raise InvalidInput("A process needs a command; argv is empty.")

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env) if env is not None else None,
            text=True,
            close_fds=True,
        )

    try:
        child = _inside(netns, start)
    except OSError as e:
        raise ProcessFailure(f"Could not run {argv[0]} in network namespace {netns}: {e.strerror}.") from e
    with child:
        try:
            out, err = child.communicate(input=input, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            child.kill()
            child.communicate()
            raise ProcessFailure(
                f"{argv[0]} in network namespace {netns} ran longer than {timeout}s and was killed."
            ) from e
    return subprocess.CompletedProcess(list(argv), child.returncode, out, err)


def wait_until_dead(rec: ProcRecord, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for the process of ``rec`` to end; whether it did."""
    try:
        pidfd = os.pidfd_open(rec.pid)
    except ProcessLookupError:
        return True
    try:
        return not _matches(rec) or _wait_exit(pidfd, timeout)
    finally:
        os.close(pidfd)
        _reap(rec.pid)
