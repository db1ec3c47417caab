"""The JavaScript that reads DrayDog's camera page from inside it, and what it returns.

Each script reads in one round trip what would take many WebDriver calls. None
holds a selector: each gets the ones it needs as arguments (all of them as
``asdict(Selectors)``), so they stay in ``page_selectors``.
"""

from __future__ import annotations

from dataclasses import dataclass

_SHOWN_JS = r"""
const shown = el => !!el && el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
"""
"""Page-side helper of the scripts below: whether an element is displayed."""

STATE_JS = _SHOWN_JS + r"""
const sel = arguments[0], scroll = arguments[1];
const any = (selector, root) => Array.from((root || document).querySelectorAll(selector)).some(shown);
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
let form = null;
const dayText = new RegExp(sel.day_button_text, 'i');
const errorBox = document.querySelector(sel.page_error);
if (sel.picker_input.some(s => any(s))) form = 'picker';
else if (Array.from(document.querySelectorAll(sel.day_button))
           .some(b => dayText.test(b.textContent.replace(/\s+/g, ' ').trim()))) form = 'legacy';
else if (shown(errorBox)) form = 'error';
const root = historyRoot();
const state = {form: form, error: errorBox ? errorBox.textContent.trim() : '', found: !!root,
               loading: any(sel.fullscreen_mask), items: 0, errors: 0, empty: false, srcs: []};
if (!root) return state;
state.loading = state.loading || any(sel.loading_mask, root);
let pending = null;
const items = root.querySelectorAll(sel.item);
state.items = items.length;
for (const item of items) {
  const img = item.querySelector(sel.item_img);
  if (img) state.srcs.push(img.src || img.getAttribute('src') || '');
  else if (item.querySelector(sel.item_error)) state.errors += 1;
  else if (!pending) pending = item;
}
state.empty = any(sel.empty, root);
if (scroll && pending && !state.loading) {
  const box = pending.getBoundingClientRect();
  if (box.bottom < 0 || box.top > innerHeight) pending.scrollIntoView({block: 'center'});
}
return state;
"""
"""The page form and the History list in one round trip; scrolls lazy items into view."""

PANEL_JS = _SHOWN_JS + r"""
const sel = arguments[0];
for (const panel of document.querySelectorAll(sel.panel)) {
  if (shown(panel)) return panel;
}
return null;
"""
"""The open date-picker panel (closed ones stay in the DOM, hidden)."""

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
    empty: bool
    srcs: list[str]

    @property
    def settled(self) -> bool:
        """Every History item has its picture or its error: nothing is still loading."""
        return self.items > 0 and len(self.srcs) + self.errors == self.items

    @property
    def signature(self) -> tuple[object, ...]:
        """What tells one History list from another, to see whether a pick changed it."""
        return (self.found, self.items, self.errors, self.empty, tuple(self.srcs))
