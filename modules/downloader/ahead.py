"""Run the slow first step of each item one item ahead of the caller, in one thread.

A range of days is discovery (a browser reading a page) then downloads (the CDN),
day after day. Discovering day N+1 in the background while day N downloads runs
the range near its download bound instead of the sum of both. One thread does
the first steps, in order, so the browser is only ever used by one thread.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


def run_ahead(
    items: Iterable[_Item],
    first_step: Callable[[_Item], _Result],
    *,
    depth: int = 1,
    thread_name: str = "ahead",
) -> Generator[tuple[_Item, Future[_Result]], None, None]:
    """Each item with the future of its ``first_step``, in order.

    At most ``depth`` items past the one handed out are started, so a range never
    reads far ahead of what it stores. Leaving the loop early (an exception, a
    stop) cancels the steps not started and waits for the one running.
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, not {depth}")
    pending: deque[tuple[_Item, Future[_Result]]] = deque()
    source = iter(items)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
    try:
        for item in source:
            pending.append((item, pool.submit(first_step, item)))
            if len(pending) > depth:
                yield pending.popleft()
        while pending:
            yield pending.popleft()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
