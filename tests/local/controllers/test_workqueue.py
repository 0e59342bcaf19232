"""The work queue: one entry per key however often it is added, never one key in two workers,
delayed keys due on a clock, exponential back-off for failing keys."""

from __future__ import annotations

import threading

from fleetnet.local.controllers.workqueue import WorkQueue


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_a_key_is_queued_once_and_requeued_after_processing() -> None:
    q: WorkQueue[str] = WorkQueue("t")
    for _ in range(3):
        q.add("a")
    q.add("b")
    assert len(q) == 2
    assert q.get() == "a"
    q.add("a")  # while processing: not handed to a second worker
    assert q.get() == "b"
    assert len(q) == 0
    q.done("a")
    assert q.get() == "a"


def test_delays_and_back_off_follow_the_clock() -> None:
    clock = Clock()
    q: WorkQueue[str] = WorkQueue("t", base_delay=1.0, max_delay=4.0, clock=clock)
    q.add_after("late", 10)
    q.add_after("late", 5)  # an earlier time wins
    for _ in range(4):
        q.add_rate_limited("flaky")
    assert q.failures("flaky") == 4
    clock.t = 5.0
    got = {q.get(), q.get()}
    assert got == {"late", "flaky"}  # flaky's last delay was capped at 4
    q.forget("flaky")
    assert q.failures("flaky") == 0


def test_shutdown_wakes_a_waiting_worker() -> None:
    q: WorkQueue[str] = WorkQueue("t")
    out: list[str | None] = []
    t = threading.Thread(target=lambda: out.append(q.get()))
    t.start()
    q.shutdown()
    t.join(5)
    assert out == [None]
