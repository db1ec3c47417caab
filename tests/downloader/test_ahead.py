"""run_ahead: the first step of the next item runs while the caller works on this one."""

from __future__ import annotations

import threading

import pytest

from modules.downloader.ahead import run_ahead


def test_items_come_in_order_with_their_results() -> None:
    results = [
        (item, future.result()) for item, future in run_ahead(range(7), lambda n: n * n)
    ]
    assert results == [(n, n * n) for n in range(7)]


def test_the_next_item_is_prepared_while_the_caller_works_on_this_one() -> None:
    started = {n: threading.Event() for n in range(4)}

    def step(n: int) -> int:
        started[n].set()
        return n

    for item, future in run_ahead(range(4), step):
        assert future.result() == item
        if item < 3:
            # Without the overlap the next step would only start when asked for.
            assert started[item + 1].wait(timeout=10)


def test_no_more_than_depth_items_are_started_ahead() -> None:
    started: list[int] = []
    lock = threading.Lock()

    def step(n: int) -> int:
        with lock:
            started.append(n)
        return n

    for item, future in run_ahead(range(6), step, depth=2):
        future.result()
        with lock:
            assert max(started) <= item + 2


def test_a_failing_step_fails_its_item_only() -> None:
    def step(n: int) -> int:
        if n == 1:
            raise RuntimeError("page failed")
        return n

    outcomes: list[int | str] = []
    for item, future in run_ahead(range(3), step):
        try:
            outcomes.append(future.result())
        except RuntimeError as exc:
            outcomes.append(str(exc))
    assert outcomes == [0, "page failed", 2]


def test_leaving_early_waits_for_the_running_step_and_starts_no_other() -> None:
    running = threading.Event()
    release = threading.Event()
    finished: list[int] = []

    def step(n: int) -> int:
        if n == 1:
            running.set()
            release.wait(timeout=10)
        finished.append(n)
        return n

    steps = run_ahead(range(5), step)
    item, future = next(steps)
    assert future.result() == 0
    assert running.wait(timeout=10)
    release.set()
    steps.close()  # the caller stops: step 1 is waited for, 2.. never start
    assert finished == [0, 1]


def test_depth_must_be_positive() -> None:
    with pytest.raises(ValueError, match="depth"):
        next(run_ahead([1], lambda n: n, depth=0))
