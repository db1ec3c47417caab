"""Every selector of DrayDog's camera page, in one place: when the page changes,
this is the file to change."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Selectors:
    """Every selector the discovery uses; each tuple lists alternatives, first match wins.

    The real page may change; the replica follows ``/work/shared/draydog-site.md``.
    """

    history_root: tuple[str, ...] = ("#camera-history", "[id*='history' i]")
    history_heading: str = "h1, h2, h3, h4, h5, h6, .el-card__header, [class*='title']"
    history_heading_text: str = "History"
    item: str = "div.el-image"
    item_img: str = "img.el-image__inner"
    item_error: str = ".el-image__error"
    loading_mask: str = ".el-loading-mask"
    fullscreen_mask: str = ".el-loading-mask.is-fullscreen"
    empty: str = ".el-empty"
    page_error: str = ".el-alert--error"
    picker_input: tuple[str, ...] = (
        "input.el-input__inner[placeholder='Pick a day']",
        ".el-date-editor input.el-input__inner",
    )
    panel: str = "div.el-picker-panel.el-date-picker"
    header_label: str = "div.el-date-picker__header span.el-date-picker__header-label"
    prev_year: tuple[str, ...] = (
        "button.el-picker-panel__icon-btn.el-date-picker__prev-btn.el-icon-d-arrow-left",
        "button[aria-label='Previous Year']",
    )
    prev_month: tuple[str, ...] = (
        "button.el-picker-panel__icon-btn.el-date-picker__prev-btn.el-icon-arrow-left",
        "button[aria-label='Previous Month']",
    )
    next_year: tuple[str, ...] = (
        "button.el-picker-panel__icon-btn.el-date-picker__next-btn.el-icon-d-arrow-right",
        "button[aria-label='Next Year']",
    )
    next_month: tuple[str, ...] = (
        "button.el-picker-panel__icon-btn.el-date-picker__next-btn.el-icon-arrow-right",
        "button[aria-label='Next Month']",
    )
    day_cell: str = "table.el-date-table td"
    other_month_classes: tuple[str, ...] = ("prev-month", "next-month")
    disabled_class: str = "disabled"
    today_class: str = "today"
    current_class: str = "current"
    day_button: str = (
        "button, .el-button, .el-radio-button__inner, .el-tabs__item,"
        " [role='button'], [role='tab']"
    )
    day_button_text: str = (
        r"^(mon|tue|wed|thu|fri|sat|sun)[a-z]*,?\s+[a-z]{3}[a-z]*\.?\s+\d{1,2}$"
    )
    """The older form's day labels, like ``Sat, Sep 6`` (a JavaScript regex, ignoring case)."""


SELECTORS = Selectors()
