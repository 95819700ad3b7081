"""The web page in a real browser: Debian's Chromium driven by Playwright (browser downloads are not
possible here, so Playwright is pointed at the system binary), with every request the page makes
recorded and every dialog it opens caught."""

import base64
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Dialog, Page, Playwright, Request, expect, sync_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Screenshots of the main views (git-ignored).
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "web"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
DEADLINE_MS = 300_000  # a generation on a busy 2-core machine
expect.set_options(timeout=DEADLINE_MS)


@dataclass
class Tab:
    """A page of the app with what it did: every URL it requested, every dialog it opened."""

    page: Page
    origin: str
    requests: list[Request] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def foreign_requests(self) -> list[str]:
        """Requests that left for another origin. One the page's Content-Security-Policy refused
        (ReDoc's bundle asks its CDN for a logo) never left the browser: it fails with "csp"."""
        return [
            request.url
            for request in self.requests
            if urlsplit(request.url).scheme not in ("data", "blob")
            and not request.url.startswith(self.origin + "/")
            and request.failure != "csp"
        ]

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=ARTIFACTS / f"{name}.png")

    def drop_file(self, selector: str, name: str, content: bytes, media_type: str) -> None:
        """Drops a file on an element as a person dragging it from their desktop would."""
        transfer = self.page.evaluate_handle(
            """([data, name, type]) => {
                const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
                const transfer = new DataTransfer();
                transfer.items.add(new File([bytes], name, { type }));
                return transfer;
            }""",
            [base64.b64encode(content).decode("ascii"), name, media_type],
        )
        self.page.dispatch_event(selector, "dragover", {"dataTransfer": transfer})
        self.page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


# One driver per module that uses it, not per session: Playwright's sync API holds an asyncio loop on
# the test thread while it runs, and a later test's asyncio.run() would refuse to start.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


def open_tab(
    browser: Browser, origin: str, api_key: str, viewport: dict[str, int] = DESKTOP, locale: str = "en-US"
) -> Tab:
    """A fresh browser tab whose page has the user's API key, as if they had entered it once, in a
    browser whose language is `locale` (navigator.language, Accept-Language)."""
    context = browser.new_context(base_url=origin, viewport=viewport, locale=locale)
    context.add_init_script(f"localStorage.setItem('chatbot.apiKey', {json.dumps(api_key)})")
    context.set_default_timeout(DEADLINE_MS)
    page = context.new_page()
    tab = Tab(page, origin)
    context.on("request", lambda request: tab.requests.append(request))

    def on_dialog(dialog: Dialog) -> None:
        tab.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return tab


def letters(text: str) -> str:
    """The letters of a text: rendered markdown and its source compare equal on these."""
    return re.sub(r"[^A-Za-z]", "", text)
