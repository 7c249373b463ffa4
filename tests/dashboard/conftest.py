"""The dashboard end to end: a live ``supportlens serve`` with the demo workspace, and Debian's
Chromium driven by Playwright.  Screenshots go to build/screenshots/ (kept by CI runs)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright

from tests.live import cli_env, live_server, run_cli

SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
# Chromium as root in a sandbox with no network: no sandbox, no GPU, no background connections.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass(frozen=True)
class Demo:
    base: str
    read_token: str
    env: dict[str, str]

    def url(self, query: str = "") -> str:
        return f"{self.base}/{query}#token={self.read_token}"

    def token(self, *args: str) -> str:
        """A new token of the demo workspace (``token create`` arguments after the name)."""
        return run_cli(self.env, "token", "create", "dashboard-test", "-w", "demo", *args).split()[-1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    env = cli_env(tmp_path_factory.mktemp("dashboard-data"))
    run_cli(env, "demo")
    token = run_cli(env, "token", "create", "viewer", "-s", "read", "-w", "demo").split()[-1]
    with live_server(env) as base:
        yield Demo(base, token, env)


def chromium_path() -> str:
    path = os.environ.get("SUPPORTLENS_CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.fail("Chromium is missing: `make browser` installs Debian's (or set SUPPORTLENS_CHROMIUM)")
    return path


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@dataclass
class Console:
    """What the page said on its console, and the uncaught errors it raised."""

    errors: list[str] = field(default_factory=list)

    def record(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"{message.text} ({message.location.get('url', '')})")


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def page(browser: Browser, console: Console, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.on("console", console.record)
    page.on("pageerror", lambda error: console.errors.append(f"uncaught: {error}"))
    yield page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{request.node.name}.png", full_page=True)
    context.close()
