"""Headless Chromium for the HTML report tests: Debian's ``chromium`` driven by Playwright.

Never a downloaded browser: Playwright gets the system binary as ``executable_path``
(``EXPOSURE_AUDIT_CHROMIUM`` overrides it). Only ``file://`` pages are opened, and Chromium is
kept off the network: no background, sync, component-update or first-run traffic, no QUIC, a
fresh profile per session, every host name unresolvable, and any request that is not
``file:`` or ``data:`` aborted and recorded so a test can fail on it.

The tests are skipped (with the reason) when Playwright or Chromium is missing; ``.ci/install``
installs both.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, ConsoleMessage, Dialog, Page, Request, Route

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-default-browser-check",
    "--metrics-recording-only",
    # Nothing resolves: even a request that slipped past the page's CSP and the route below
    # could not reach a host.
    "--host-resolver-rules=MAP * ~NOTFOUND",
]


def _chromium() -> str | None:
    explicit = os.environ.get("EXPOSURE_AUDIT_CHROMIUM")
    if explicit:
        return explicit
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class PageLog:
    """What a page did besides rendering: every one of these lists should stay empty."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # anything but the page's own file


class Chromium:
    """One headless Chromium (one fresh profile) for the session; :meth:`open` gives pages."""

    def __init__(self, context: BrowserContext) -> None:
        self._context = context
        self.blocked: list[str] = []
        context.route("**/*", self._route)

    def _route(self, route: Route) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("blockedbyclient")

    def open(self, path: Path, *, width: int = 1000, height: int = 1200) -> tuple[Page, PageLog]:
        """Open ``path`` (a local file) in a new tab of ``width`` x ``height`` CSS pixels,
        logging console errors (CSP violations among them), uncaught exceptions, dialogs (each
        dismissed) and requests for anything but the file itself."""
        page = self._context.new_page()
        page.set_viewport_size({"width": width, "height": height})
        log = PageLog()
        uri = path.resolve().as_uri()

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                log.console_errors.append(message.text)

        def on_dialog(dialog: Dialog) -> None:
            log.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        def on_request(request: Request) -> None:
            if request.url != uri:
                log.requests.append(request.url)

        page.on("console", on_console)
        page.on("pageerror", lambda error: log.page_errors.append(str(error)))
        page.on("dialog", on_dialog)
        page.on("request", on_request)
        page.goto(uri, wait_until="load")
        return page, log


# Module scope, not session: Playwright's sync API keeps an event loop running in this thread
# while it is open, and every later test that calls asyncio.run() would fail.
@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    from playwright import sync_api

    executable = _chromium()
    if executable is None or not Path(executable).exists():
        # A missing browser fails the test: CI installs it, and a skip would pass silently.
        pytest.fail("no Chromium: apt-get install chromium (or set EXPOSURE_AUDIT_CHROMIUM)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            chromium_sandbox=False,
            accept_downloads=False,
            service_workers="block",
            offline=True,
        )
        try:
            yield Chromium(context)
        finally:
            context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """tests/artifacts/ (git-ignored): screenshots and the PDF, kept for people to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
