"""When the History list on the camera page is the picked day's, complete and stable.

The page says neither when a pick has been answered nor when its list is whole:
a pick may change nothing (the same day again), be overtaken by the late answer
of the page's own first load, or fill the list in batches. So the list is read
repeatedly, and these rules and timings decide when to take it.
"""

from __future__ import annotations

import time
from typing import Callable, Literal

from selenium.webdriver.remote.webdriver import WebDriver

from modules.downloader.page_scripts import PageState

STABLE_SECONDS = 0.2
"""How long a complete History list must stay unchanged before it is read."""
NO_REACTION_SECONDS = 3.0
"""How long a state must hold that may not be the picked day's: a list the pick
changed nothing in (no loading mask either), or an empty list on a page still busy
with its first load."""


class HistoryReady:
    """WebDriverWait condition: the History of the picked day is complete and stable.

    Complete: no loading mask, and every item holds its picture or its error, or
    the list is empty (an ``el-empty`` block, or no items after a loading mask).
    Of the picked day: the list differs from the one before the pick, or a loading
    mask was seen since, or the page showed no reaction for NO_REACTION_SECONDS;
    and ``is_day_list`` holds (its CDN pictures are not all of other days). Stable:
    unchanged for STABLE_SECONDS, so a list that grows in batches is read whole; an
    empty list picked on a page still busy with its first load (``confirm_empty``)
    for NO_REACTION_SECONDS, as it may be that load's late answer.
    """

    def __init__(
        self,
        read_state: Callable[[WebDriver], PageState],
        is_day_list: Callable[[PageState], bool],
        before: tuple[object, ...],
        expect_change: bool,
        confirm_empty: bool,
    ) -> None:
        self.read_state = read_state
        self.is_day_list = is_day_list
        self.before = before
        self.expect_change = expect_change
        self.confirm_empty = confirm_empty
        self.started = time.monotonic()
        self.saw_loading = False
        self.last: tuple[object, ...] | None = None
        self.since = 0.0

    def __call__(self, driver: WebDriver) -> PageState | Literal[False]:
        state = self.read_state(driver)
        now = time.monotonic()
        waited = now - self.started
        if state.loading:
            self.saw_loading = True
        empty = state.found and state.items == 0
        complete = not state.loading and (
            state.settled
            or (
                empty
                and (state.empty or self.saw_loading or waited >= NO_REACTION_SECONDS)
            )
        )
        reacted = (
            not self.expect_change
            or self.saw_loading
            or state.signature != self.before
            or waited >= NO_REACTION_SECONDS
        )
        if not (complete and reacted and self.is_day_list(state)):
            self.last = None
            return False
        if state.signature != self.last:
            self.last, self.since = state.signature, now
            return False
        hold = NO_REACTION_SECONDS if empty and self.confirm_empty else STABLE_SECONDS
        return state if now - self.since >= hold else False
