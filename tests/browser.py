"""A real headless browser for the report tests: Debian's chromium, driven from the command line or Playwright.

Without chromium (or Playwright) the tests that need it are skipped with the reason and the install
line; under ORCH_REQUIRE_BROWSER=1 (which .ci/run sets) that skip is a failure instead, so CI cannot
pass without a browser having run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("ORCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
INSTALL = "apt-get install -y chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]
REQUIRED = os.environ.get("ORCH_REQUIRE_BROWSER", "") not in ("", "0")


def missing(reason: str) -> None:
    """Skip, or fail where a browser is required."""
    if REQUIRED:
        pytest.fail(f"{reason} (ORCH_REQUIRE_BROWSER is set)", pytrace=False)
    pytest.skip(reason)


def require_chromium() -> str:
    if not Path(CHROMIUM).exists():
        missing(f"chromium not found; install it with: {INSTALL}")
    return CHROMIUM


def dump_dom(page: Path, budget_ms: int = 5000) -> str:
    """The DOM after the page's scripts ran, as chromium serialises it."""
    binary = require_chromium()
    with tempfile.TemporaryDirectory(prefix="orch-chromium-") as profile:
        done = subprocess.run(
            [binary, *FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", "--dump-dom",
             page.resolve().as_uri()],
            capture_output=True, text=True, timeout=180,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "<html" in done.stdout, done.stderr[-2000:]
    return done.stdout


@pytest.fixture
def browser_page(tmp_path):
    """A Playwright page in the system chromium (Playwright never downloads a browser here)."""
    binary = require_chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed; pip install -e '.[test]'")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=binary, args=FLAGS[1:])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.errors = errors  # type: ignore[attr-defined]
        try:
            yield page
        finally:
            browser.close()
