"""The JavaScript that reads DrayDog's camera page from inside it, and what it returns.

Each script reads in one round trip what would take many WebDriver calls. None
holds a selector: each gets the ones it needs as arguments (all of them as
``asdict(Selectors)``), so they stay in ``modules.site.selectors``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Mapping

_SHOWN_JS = r"""
const shown = el => !!el && el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
"""
"""Page-side helper of the scripts below: whether an element is displayed."""

STATE_JS = _SHOWN_JS + r"""
const sel = arguments[0], scroll = arguments[1];
const any = (selector, root) => Array.from((root || document).querySelectorAll(selector)).some(shown);
// A loading mask in its leave transition is already on its way out.
const masking = (selector, root) => Array.from((root || document).querySelectorAll(selector))
  .some(el => shown(el) && !/-leave(-active|-to)?\b/.test(el.className));
function historyRoot() {
  for (const s of sel.history_root) { const el = document.querySelector(s); if (el) return el; }
  const want = sel.history_heading_text.toLowerCase();
  for (const heading of document.querySelectorAll(sel.history_heading)) {
    if (heading.textContent.trim().toLowerCase() !== want) continue;
    for (let node = heading.parentElement; node && node !== document.body; node = node.parentElement) {
      if (node.querySelector(sel.item + ',' + sel.empty)) return node;
    }
  }
  return null;
}
// An el-image's src is its Vue instance's prop: known before, and whether or not, it loads.
function dataSrc(item) {
  const vm = item.__vue__;
  return vm && vm.$el === item && typeof vm.src === 'string' && vm.src ? vm.src : '';
}
let form = null;
const dayText = new RegExp(sel.day_button_text, 'i');
const errorBox = document.querySelector(sel.page_error);
if (sel.picker_input.some(s => any(s))) form = 'picker';
else if (Array.from(document.querySelectorAll(sel.day_button))
           .some(b => dayText.test(b.textContent.replace(/\s+/g, ' ').trim()))) form = 'legacy';
else if (shown(errorBox)) form = 'error';
const root = historyRoot();
const state = {form: form, error: errorBox ? errorBox.textContent.trim() : '', found: !!root,
               loading: masking(sel.fullscreen_mask), items: 0, errors: 0, unknown: 0, from_data: 0,
               empty: false, srcs: []};
if (!root) return state;
state.loading = state.loading || masking(sel.loading_mask, root);
let pending = null;
const items = root.querySelectorAll(sel.item);
state.items = items.length;
for (const item of items) {
  const fromData = dataSrc(item);
  const img = item.querySelector(sel.item_img);
  if (fromData) { state.srcs.push(fromData); state.from_data += 1; }
  else if (img) state.srcs.push(img.src || img.getAttribute('src') || '');
  else if (item.querySelector(sel.item_error)) state.errors += 1;
  else { state.unknown += 1; if (!pending) pending = item; }
}
state.empty = any(sel.empty, root);
if (scroll && pending && !state.loading) {
  const box = pending.getBoundingClientRect();
  if (box.bottom < 0 || box.top > innerHeight) pending.scrollIntoView({block: 'center'});
}
return state;
"""
"""The page form and the History list in one round trip, in the list's order.

Each item's URL comes from the page's data (a Vue component's ``src``) where the
page has it, else from its loaded ``img``; an item with neither is still loading
(scrolled into view when lazy) or failed to load (``errors``)."""

PANEL_JS = _SHOWN_JS + r"""
const sel = arguments[0];
for (const panel of document.querySelectorAll(sel.panel)) {
  // A panel in its leave transition is closing: it is hidden once that ends.
  if (shown(panel) && !/-leave(-active|-to)?\b/.test(panel.className)) return panel;
}
return null;
"""
"""The open date-picker panel (closed ones stay in the DOM, hidden; a closing one,
still shown in its leave transition, is not open)."""

PANEL_STILL_JS = _SHOWN_JS + r"""
const panel = arguments[0];
if (!shown(panel) || /-leave(-active|-to)?\b/.test(panel.className)) return 'closed';
if (Array.from(panel.classList).some(c => /-(enter|leave)(-active|-to)?$/.test(c))) return null;
if (getComputedStyle(panel).transform !== 'none' && getComputedStyle(panel).transform !== 'matrix(1, 0, 0, 1, 0, 0)') return null;
const box = panel.getBoundingClientRect();
return [Math.round(box.left * 10), Math.round(box.top * 10), Math.round(box.width * 10), Math.round(box.height * 10)];
"""
"""Where the open picker panel is, null while it opens, ``'closed'`` once it closes."""

PICKED_JS = r"""
const sel = arguments[0];
for (const s of sel.picker_input) {
  const input = document.querySelector(s);
  if (input) return input.value || '';
}
return null;
"""
"""What the picker's input holds: the picked day, as the page formats it."""

_NET_PROBE_JS = r"""
(() => {
  if (window.__draydogNet) return;
  const sel = __SELECTORS__;
  const net = window.__draydogNet = {pending: 0, log: [], itemsChanged: null};
  const begin = url => { net.pending += 1; const e = {url: String(url), start: performance.now(), end: null, status: null};
                         net.log.push(e); if (net.log.length > 500) net.log.shift(); return e; };
  const end = (e, status) => { if (e.end !== null) return; net.pending -= 1; e.end = performance.now(); e.status = status; };
  const fetch0 = window.fetch;
  if (fetch0) window.fetch = function (input, init) {
    const e = begin(input && input.url ? input.url : input);
    return fetch0.apply(this, arguments).then(r => { end(e, r.status); return r; }, err => { end(e, 0); throw err; });
  };
  const open0 = XMLHttpRequest.prototype.open, send0 = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.open = function (method, url) { this.__draydogUrl = url; return open0.apply(this, arguments); };
  XMLHttpRequest.prototype.send = function () {
    const e = begin(this.__draydogUrl);
    this.addEventListener('loadend', () => end(e, this.status));
    return send0.apply(this, arguments);
  };
  // When History items were last added or removed: a rendered answer, not a picture loading.
  const isItem = node => node.nodeType === 1 && (node.matches(sel.item) || !!node.querySelector(sel.item));
  const inHistory = target => {
    const roots = sel.history_root.map(s => document.querySelector(s)).filter(Boolean);
    return !roots.length || roots.some(root => root.contains(target));
  };
  new MutationObserver(records => {
    for (const record of records) {
      if (!inHistory(record.target)) continue;
      if (Array.from(record.addedNodes).some(isItem) || Array.from(record.removedNodes).some(isItem)) {
        net.itemsChanged = performance.now();
        return;
      }
    }
  }).observe(document, {childList: true, subtree: true});
})();
"""


def net_probe_js(selectors: Mapping[str, object]) -> str:
    """The probe installed before any page script: it counts the page's data
    requests (fetch and XHR) in flight, logs each one's start, end and status, and
    notes when History items were last added or removed. The page says nothing of
    when it has answered a pick; its own requests and renders do."""
    wanted = {key: selectors[key] for key in ("item", "history_root")}
    return _NET_PROBE_JS.replace("__SELECTORS__", json.dumps(wanted))


NET_JS = r"""
const mark = arguments[0], net = window.__draydogNet;
if (!net) return null;
let since = 0, done = 0, failed = 0, last = null;
for (const e of net.log) {
  if (e.start < mark) continue;
  since += 1;
  if (e.end === null) continue;
  done += 1;
  if (e.status === 0 || e.status >= 400) failed += 1;
  last = last === null ? e.end : Math.max(last, e.end);
}
const now = performance.now();
return {pending: net.pending, since: since, done: done, failed: failed, quiet: last === null ? null : now - last,
        rendered_after: last !== null && net.itemsChanged !== null && net.itemsChanged > last, now: now};
"""
"""The data requests since ``mark`` (a ``performance.now()``): started, completed,
failed, in flight overall, how long since the last one ended (ms), and whether
History items changed after it (its answer was rendered)."""

READING_JS = (
    "const state = (function () {"
    + STATE_JS
    + "}).apply(null, [arguments[0], arguments[1]]);\n"
    + "const net = (function () {"
    + NET_JS
    + "}).apply(null, [arguments[2]]);\n"
    + "return {state: state, net: net};"
)
"""``STATE_JS`` and ``NET_JS`` in one script, so in one turn of the page's event
loop: read apart, an answer rendered between the two reads would pair the list
before it with the news that it was rendered."""

NOW_JS = "return performance.now();"
"""The page's clock, to mark the moment of a pick."""

LOAD_ERROR_JS = r"""
if (document.documentURI.startsWith('chrome-error:')) {
  const code = (window.loadTimeData && loadTimeData.data_ && loadTimeData.data_.errorCode) || '';
  return 'the browser could not load it: ' + (code || document.body.innerText.trim().split('\n').slice(0, 3).join(' '));
}
const nav = performance.getEntriesByType('navigation')[0];
if (nav && nav.responseStatus >= 400) {
  return 'it answered HTTP ' + nav.responseStatus + ': ' + document.body.innerText.trim().slice(0, 200);
}
return null;
"""
"""Why the page did not load (the browser's error page, an HTTP error), else null."""

CELL_JS = r"""
const panel = arguments[0], sel = arguments[1], wanted = arguments[2];
let cell = null, today = null;
for (const td of panel.querySelectorAll(sel.day_cell)) {
  if (sel.other_month_classes.some(c => td.classList.contains(c))) continue;
  const number = parseInt(td.textContent.trim(), 10);
  if (td.classList.contains(sel.today_class)) today = number;
  if (number === wanted) cell = td;
}
return [cell, cell ? cell.className : '', today];
"""
"""The shown month's cell of a day number, its classes, and the today cell's number."""

BUTTON_JS = r"""
const sel = arguments[0];
const norm = s => s.replace(/[\s,]+/g, ' ').trim().toLowerCase();
const want = norm(arguments[1]);
for (const button of document.querySelectorAll(sel.day_button)) {
  if (norm(button.textContent) === want) return button;
}
return null;
"""
"""The older form's button of a day, by its label (``Sat, Sep 6``)."""

STEP_MONTHS_JS = r"""
const panel = arguments[0], sel = arguments[1], years = arguments[2], months = arguments[3];
const button = choices => { for (const s of choices) { const b = panel.querySelector(s); if (b) return b; } return null; };
const steps = [[years, years > 0 ? sel.next_year : sel.prev_year], [months, months > 0 ? sel.next_month : sel.prev_month]];
for (const [count, choices] of steps) {
  const b = button(choices);
  if (count && !b) return false;
  for (let i = 0; i < Math.abs(count); i++) b.click();
}
return true;
"""
"""Step the picker's shown month by ``years`` and ``months`` with its header buttons
(events, not pointer clicks: they do not depend on where the moving panel is)."""

HEADER_JS = r"""
return Array.from(arguments[0].querySelectorAll(arguments[1])).map(e => e.textContent).join(' ');
"""
"""The picker header's labels as one text: ``2025  September``."""


@dataclass(frozen=True)
class PageState:
    """What ``STATE_JS`` saw: the page form and the History list."""

    form: str | None
    error: str
    found: bool
    loading: bool
    items: int
    errors: int
    """Items whose picture failed to load and whose URL the page's data does not give."""
    unknown: int
    """Items still loading, whose URL is not known yet."""
    from_data: int
    """Items whose URL came from the page's data rather than a loaded picture."""
    empty: bool
    srcs: list[str]

    @property
    def settled(self) -> bool:
        """Every History item's URL is known, or its picture failed: nothing is pending."""
        return self.items > 0 and self.unknown == 0

    @property
    def signature(self) -> tuple[object, ...]:
        """What tells one History list from another, to see whether it still changes."""
        return (self.found, self.items, self.errors, self.empty, tuple(self.srcs))


@dataclass(frozen=True)
class NetState:
    """What ``NET_JS`` saw of the page's data requests since a pick."""

    pending: int
    since: int
    done: int
    failed: int
    quiet: float | None
    """Milliseconds since the last request since the pick ended, None if none has."""
    rendered_after: bool
    """History items were added or removed after the last answer since the pick."""
    now: float
