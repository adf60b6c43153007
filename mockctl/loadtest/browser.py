"""``report.html`` opened in Debian's headless Chromium, driven by Playwright: the browser test's
launch and the docs' screenshot share this, so the picture in the docs is what the test looked at.

Playwright is in the ``test`` extra, not a dependency of the tool: ``pip install -e '.[test]'``
and ``apt-get install chromium``. Playwright's own browser download (``playwright install``) is
never used: this closed network refuses it, and the distribution's Chromium is the one CI has.

``python -m mockctl.loadtest.browser REPORT.html OUT.png`` writes the whole page as a PNG."""

from __future__ import annotations

import io
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image  # matplotlib's own dependency

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking ones, Chromium's calls home are refused by a closed network,
# many at a time, and each start waits on looking up Google's hosts.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
VIEWPORT = {"width": 1000, "height": 800}  # the page is 60em wide: charts at their drawn size


def missing() -> str | None:
    """What to install before ``chromium()`` can start (Playwright is imported only then, so this
    module loads without it), or None."""
    if find_spec("playwright") is None:
        return "Playwright for Python is not installed: pip install -e '.[test]' (not `playwright install`)"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is not installed: apt-get install -y chromium"
    return None


@contextmanager
def chromium() -> Iterator[BrowserContext]:
    """A headless Chromium with a fresh profile (``--user-data-dir``), removed after."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw, tempfile.TemporaryDirectory(prefix="mockcoord-chromium-") as profile:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=list(FLAGS), viewport=VIEWPORT
        )
        try:
            yield context
        finally:
            context.close()


def screenshot(report: Path, png: Path) -> None:
    """The whole page, as a reader scrolling it sees it, in 256 colours: charts and text lose
    nothing a reader sees, and the PNG a third of its size stays small enough for the docs."""
    with chromium() as context:
        page = context.new_page()
        page.goto(report.resolve().as_uri())
        shot = page.screenshot(full_page=True)
    Image.open(io.BytesIO(shot)).quantize(256).save(png, optimize=True)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m mockctl.loadtest.browser REPORT.html OUT.png")
    if why := missing():
        sys.exit(why)
    screenshot(Path(sys.argv[1]), Path(sys.argv[2]))
