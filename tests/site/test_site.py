"""The site's rules stand apart: importing them loads no downloader machinery."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from importlib import resources


def test_the_site_rules_import_without_requests_selenium_or_sqlalchemy() -> None:
    script = (
        "import sys, modules.site.urls, modules.site.selectors;"
        "print(sorted(m for m in ('requests', 'selenium', 'sqlalchemy') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_the_rules_have_one_home() -> None:
    for old in ("modules.downloader.urls", "modules.downloader.page_selectors"):
        assert importlib.util.find_spec(old) is None, old


def test_the_package_is_marked_typed() -> None:
    assert resources.files("modules").joinpath("py.typed").is_file()
