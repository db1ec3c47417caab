"""When the History list on the camera page is the picked day's answer, whole and stable.

The page says neither when a pick has been answered nor when its list is whole.
Its own data requests do: a probe in the page (``page_scripts.net_probe_js``)
counts them. A list is taken only with evidence, never on timing alone:

* a list with pictures must show pictures of the picked day (a late answer for
  another day, or the old day still shown, is refused), no data request may be in
  flight, and History items must have changed after the page's latest answer
  (or the list must hold ``UNRENDERED_HOLD_SECONDS`` after it): a list that comes in
  batches is read whole;
* an empty list must follow a data request that started after the pick and
  answered, with none in flight, and hold still for ``EMPTY_HOLD_SECONDS``; a data
  request that failed since the pick makes it a failed read, not an empty day.
  The discovery then confirms an empty day by a second, independent read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Literal

from selenium.webdriver.remote.webdriver import WebDriver

from modules.downloader.page_scripts import NetState, PageState

STABLE_SECONDS = 0.1
"""How long a list with pictures must stay unchanged, and the page's requests quiet."""
EMPTY_HOLD_SECONDS = 1.0
"""How long an empty list must hold after the page's last answer: the time a page
may take to render an answer that arrived."""
UNRENDERED_HOLD_SECONDS = 5.0
"""How long a list with pictures must hold after an answer that changed none of its
items: that answer's render may be on its way (a second batch, on a page without a
loading mask); longer than any render delay seen, and paid only on that path."""
NO_REQUEST_SECONDS = 3.0
"""After this long without any data request since the pick, a list of the picked
day's pictures is taken on its content alone (a page that answers from its cache)."""


@dataclass(frozen=True)
class Reading:
    """A History list the page showed for the picked day, and whether its data failed."""

    state: PageState
    failed_requests: int
    """Data requests since the pick that failed: an empty list is then no answer."""


_NO_PROBE = NetState(
    pending=0, since=0, done=0, failed=0, quiet=None, rendered_after=False, now=0.0
)
"""What a page without the probe tells: nothing but the list itself."""


class HistoryReady:
    """WebDriverWait condition: the picked day's History is complete and stable.

    A list with pictures is taken quickly only when History items changed after
    the page's latest answer (that answer was rendered); otherwise the latest
    answer may still be waiting for its render, as a second batch does on a page
    without a loading mask, and the list must hold ``UNRENDERED_HOLD_SECONDS`` after it.
    """

    def __init__(
        self,
        read: Callable[[WebDriver], tuple[PageState, NetState | None]],
        is_day_list: Callable[[PageState], bool],
    ) -> None:
        self.read = read
        self.is_day_list = is_day_list
        self.started = time.monotonic()
        self.last: tuple[object, ...] | None = None
        self.since = 0.0

    def __call__(self, driver: WebDriver) -> Reading | Literal[False]:
        state, probed = self.read(driver)
        net = probed or _NO_PROBE
        now = time.monotonic()
        if state.signature != self.last:
            self.last, self.since = state.signature, now
        if not self._whole(state, net):
            return False
        held = now - self.since
        quiet = float("inf") if net.quiet is None else net.quiet / 1000
        if state.items == 0:
            if net.failed:
                return Reading(state, net.failed)
            taken = min(held, quiet) >= EMPTY_HOLD_SECONDS
        elif net.done == 0:
            taken = now - self.started >= NO_REQUEST_SECONDS and held >= STABLE_SECONDS
        elif net.rendered_after:
            taken = min(held, quiet) >= STABLE_SECONDS
        else:
            taken = min(held, quiet) >= UNRENDERED_HOLD_SECONDS
        return Reading(state, net.failed) if taken else False

    def _whole(self, state: PageState, net: NetState) -> bool:
        """The list is complete and may be the answer; timing is checked apart."""
        if not state.found or state.loading or net.pending > 0:
            return False
        if state.items == 0:
            return net.done > 0  # an empty list counts only after an answer
        return state.settled and self.is_day_list(state)
