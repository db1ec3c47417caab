"""The real widget DrayDog's camera page is built on: Vue 2.7 and Element UI 2.15.

The replica's page is only as good as its likeness to the site, so it runs the
real npm packages rather than an imitation. They are not committed: the setup
script (``scripts/fetch-widget.sh``) fetches the pinned versions into a cache
outside the package, and the replica serves the few files the page loads from
there under ``/assets/widget/``.
"""

from __future__ import annotations

import os
from pathlib import Path

VUE_VERSION = "2.7.16"
ELEMENT_UI_VERSION = "2.15.14"
WIDGET_DIR_ENV = "DRAYDOG_WIDGET_DIR"
ASSET_PREFIX = "/assets/widget/"
FETCH_HINT = "scripts/fetch-widget.sh"

_PACKAGES = {
    "vue": f"vue-{VUE_VERSION}",
    "element-ui": f"element-ui-{ELEMENT_UI_VERSION}",
}
ASSETS: dict[str, tuple[str, str, str]] = {
    "vue.min.js": ("vue", "dist/vue.min.js", "application/javascript"),
    "element-ui/index.js": ("element-ui", "lib/index.js", "application/javascript"),
    "element-ui/locale/en.js": (
        "element-ui",
        "lib/umd/locale/en.js",
        "application/javascript",
    ),
    "element-ui/theme-chalk/index.css": (
        "element-ui",
        "lib/theme-chalk/index.css",
        "text/css",
    ),
    "element-ui/theme-chalk/fonts/element-icons.woff": (
        "element-ui",
        "lib/theme-chalk/fonts/element-icons.woff",
        "font/woff",
    ),
    "element-ui/theme-chalk/fonts/element-icons.ttf": (
        "element-ui",
        "lib/theme-chalk/fonts/element-icons.ttf",
        "font/ttf",
    ),
}
"""Served name -> (package, file inside it, content type): all the page loads."""


class WidgetMissing(RuntimeError):
    """The widget's assets are not in the cache: run the setup script."""


def widget_dir() -> Path:
    """Where the setup script unpacks the packages (``$DRAYDOG_WIDGET_DIR`` wins)."""
    configured = os.environ.get(WIDGET_DIR_ENV)
    if configured:
        return Path(configured)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "draydog" / "widget"


def asset_path(name: str) -> Path | None:
    """The cached file behind a served asset name, or None for a name not served."""
    entry = ASSETS.get(name)
    if entry is None:
        return None
    package, inside, _ = entry
    return widget_dir() / _PACKAGES[package] / inside


def content_type(name: str) -> str:
    return ASSETS[name][2]


def missing_assets() -> list[str]:
    """The served names whose files are not in the cache (empty when all are there)."""
    return [name for name in ASSETS if not (p := asset_path(name)) or not p.is_file()]


def available() -> bool:
    """Whether the replica can serve the page on the real widget."""
    return not missing_assets()


def require() -> None:
    """Raise WidgetMissing naming the missing files and how to fetch them."""
    missing = missing_assets()
    if missing:
        raise WidgetMissing(
            f"the replica's widget assets are missing from {widget_dir()} "
            f"({', '.join(missing)}); fetch them with `{FETCH_HINT}`"
        )
