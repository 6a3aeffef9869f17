"""The dashboard in a real browser: Debian's chromium driven by Playwright, against a node
started as ``strikechain serve --dev --with-market-makers`` (its perpetuals, and its rolling BTC
options with the development reporter's vol surface).

Checks: the book updates live; the options chain shows Greeks and the smile; an order placed
from the page (API key entered) appears in the book and cancels; a dropped WebSocket shows the
reconnecting banner, then reconnects and the book updates again. Screenshots at a laptop and a
phone width go to ``test-artifacts/dashboard/`` (gitignored). ``tools/install_browser.sh``
installs chromium (``make test`` runs it); without it these tests skip, saying why.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.node.test_serve import free_port, get, wait_status

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = Path(os.environ.get("STRIKECHAIN_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
NODE_SECONDS = 900.0
"""A bound on the node's life should the test process die (the fixture stops it first)."""
TIMEOUT_MS = 20_000

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"no chromium at {CHROMIUM}: run tools/install_browser.sh (make test does)",
    ),
    # One node and one chromium for the file, on one xdist worker (``--dist loadgroup``).
    pytest.mark.xdist_group("dashboard"),
]


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The development node (it takes seconds to start)."""
    base = tmp_path_factory.mktemp("dashboard")
    port, keys, log = free_port(), base / "dev-keys.json", base / "dev.log"
    node = launch(
        log,
        "-m", "strikechain", "serve", "--dev", "--with-market-makers",
        "--data-dir", str(base / "dev"), "--port", str(port),
        "--dev-keys-out", str(keys), "--stop-after", str(NODE_SECONDS),
    )  # fmt: skip
    try:
        wait_status(port, lambda s: s["height"] > 5 and s["acks"] >= 20)
        yield {
            "dev": f"http://127.0.0.1:{port}",
            "dev_keys": json.loads(keys.read_text()),
            "dev_process": node,
            "dev_log": log,
        }
    finally:
        node.terminate()
        try:
            node.wait(timeout=30)
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait()


def launch(log: Path, *arguments: str) -> subprocess.Popen[bytes]:
    """A Python child of this test, its output in ``log`` (a pipe nobody reads would fill)."""
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, *arguments],
            cwd=ROOT,
            env={**os.environ, "STRIKECHAIN_NATIVE": "0"},
            stdout=output,
            stderr=subprocess.STDOUT,
        )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A fresh chromium profile, removed afterwards."""
    profile = tempfile.mkdtemp(prefix="strikechain-chromium-")
    with playwright_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport=LAPTOP,
        )
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


OPEN_PAGES: list[Any] = []


@pytest.fixture(autouse=True)
def explain_failures(request: pytest.FixtureRequest, nodes: dict[str, Any]) -> Iterator[None]:
    """After a failed test: what its pages showed (connection, book, toast, console) and the
    node's last log lines, so a failure on a loaded CI machine can be diagnosed afterwards."""
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for page in OPEN_PAGES:
            print(describe(page))
        lines = nodes["dev_log"].read_text(errors="replace").splitlines()
        print("--- the node's last log lines", *lines[-40:], sep="\n")
    for page in OPEN_PAGES:
        if not page.is_closed():
            page.close()
    OPEN_PAGES.clear()


def describe(page: Any) -> str:
    if page.is_closed():
        return f"--- page {page.url}: closed"
    try:
        state = page.get_attribute("#connection", "data-state", timeout=1_000)
        book = (page.inner_html("#book", timeout=1_000) or "")[:600]
        toast = page.text_content("#toast", timeout=1_000)
    except Exception as error:  # the diagnosis must not hide the failure it explains
        return f"--- page {page.url}: could not be read ({error})"
    console = "\n".join(page.console[-30:])
    return f"--- page {page.url}: connection {state}; toast {toast!r}\nbook: {book}\n{console}"


def open_page(browser: Any, url: str, viewport: dict[str, int] = LAPTOP) -> Any:
    page = browser.new_page()
    OPEN_PAGES.append(page)
    page.set_viewport_size(viewport)
    errors: list[str] = []
    console: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: console.append(f"console.{message.type}: {message.text}"))
    page.errors = errors
    page.console = console
    page.goto(url)
    page.wait_for_selector("#connection[data-state=open]")
    return page


def book_changes(page: Any) -> int:
    return int(page.get_attribute("#book", "data-changes") or 0)


def wait_until(page: Any, predicate: Any, what: str, seconds: float = TIMEOUT_MS / 1_000) -> None:
    """Poll ``predicate()`` (the page's Content-Security-Policy forbids the string evaluation
    that ``wait_for_function`` needs)."""
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        page.wait_for_timeout(50)


def wait_book_updates(page: Any, updates: int = 2) -> None:
    start = book_changes(page)
    # The makers requote as their reference moves: on a loaded machine that can take a while.
    wait_until(page, lambda: book_changes(page) >= start + updates, "book updates", 60.0)


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_the_book_updates_live_at_laptop_and_phone_widths(
    nodes: dict[str, Any], browser: Any
) -> None:
    assert b"/dashboard/static/js/main.js" in get(nodes["dev"] + "/")
    for name, viewport in (("laptop", LAPTOP), ("phone", PHONE)):
        page = open_page(browser, nodes["dev"] + "/#market", viewport)
        page.wait_for_selector("#book tr.level.bid")
        page.wait_for_selector("#book tr.level.ask")
        wait_book_updates(page, 2 if name == "laptop" else 1)
        assert page.locator("#ticker .tick").count() >= 6
        assert page.text_content("#height") not in ("", "—")
        screenshot(page, f"market-{name}")
        for view in ("risk", "oracle", "settlement", "node"):
            page.click(f"#tab-{view}")
            page.wait_for_selector(f"#view-{view}:not([hidden])")
        page.wait_for_selector("#oracle-cards .badge", state="attached")
        page.wait_for_selector("#interval-chart svg path.line")
        screenshot(page, f"node-{name}")
        assert page.errors == []
        page.close()


def test_the_options_chain_shows_greeks_and_the_smile(nodes: dict[str, Any], browser: Any) -> None:
    page = open_page(browser, nodes["dev"] + "/#options")
    page.wait_for_selector(".chain-table td.greek.delta")
    calls = page.locator(".chain-table td.call.greek.delta")
    wait_until(page, lambda: "—" not in calls.all_text_contents(), "the calls' deltas")
    deltas = calls.all_text_contents()
    assert len(deltas) == 5  # the nearest expiry: five strikes around the index
    assert page.locator("#options-expiry option").count() >= 2  # dailies and the weekly
    assert all(0.0 < float(delta) < 1.0 for delta in deltas)
    put_deltas = page.locator(".chain-table td.put.greek.delta").all_text_contents()
    assert all(-1.0 < float(delta) < 0.0 for delta in put_deltas)
    assert page.locator("#smile-chart svg path.line").count() == 1
    screenshot(page, "options-laptop")
    page.set_viewport_size(PHONE)
    screenshot(page, "options-phone")
    assert page.errors == []
    page.close()


def test_an_order_placed_from_the_page_rests_in_the_book_and_cancels(
    nodes: dict[str, Any], browser: Any
) -> None:
    account = nodes["dev_keys"][5]
    page = open_page(browser, nodes["dev"] + "/#account")
    assert page.is_disabled("#order-submit")  # read-only until a key is entered
    page.fill("#client-id", account["api_key"])
    page.fill("#client-secret", account["api_secret"])
    page.press("#client-secret", "Enter")  # Enter submits
    page.wait_for_selector("#signed-in:not([hidden])")
    page.wait_for_selector("#ledgers article.ledger")
    page.click("#tab-market")
    page.wait_for_selector("#book tr.level.bid")
    best_bid = float(page.get_attribute("#book tr.level.bid", "data-price") or 0)
    price = round(best_bid * 0.99 * 2) / 2  # 1% under the best bid, on the 0.5 tick
    page.check("#side-buy", force=True)
    page.fill("#order-price", f"{price:.1f}")
    page.fill("#order-amount", "0.007")
    page.check("#order-post-only")
    page.press("#order-amount", "Enter")
    page.wait_for_selector("#order-status.ok")
    shown = str(int(price)) if price.is_integer() else str(price)  # as JavaScript prints it
    level = f"#book tr.level.bid.mine[data-price='{shown}']"
    page.wait_for_selector(level)
    assert float(page.get_attribute(level, "data-amount") or 0) >= 0.007
    page.wait_for_selector("#open-orders button.cancel-order")
    screenshot(page, "order-laptop")
    page.click("#open-orders button.cancel-order")
    page.wait_for_selector("#open-orders button.cancel-order", state="detached")
    page.wait_for_selector(level, state="detached")
    assert page.errors == []
    page.close()


def test_a_refused_subscription_is_asked_again(nodes: dict[str, Any], browser: Any) -> None:
    """The node refuses calls past a client address's allowance (10028): a book subscribed
    while the address is over it still arrives once the allowance refills."""
    page = open_page(browser, nodes["dev"] + "/#market")
    page.wait_for_selector("#book tr.level")
    stop = threading.Event()

    def spend() -> None:  # the page's address is this test's too (loopback)
        while not stop.is_set():
            with contextlib.suppress(urllib.error.URLError):
                get(nodes["dev"] + "/api/v2/public/get_time")

    spender = threading.Thread(target=spend)
    spender.start()
    try:
        time.sleep(1.0)  # the burst is spent
        page.select_option("#instrument", "ETH_USDC-PERPETUAL")
        wait_until(
            page,
            lambda: any("subscribe failed" in line for line in page.console),
            "a refused subscription",
        )
    finally:
        stop.set()
        spender.join()
    page.wait_for_selector("#book caption:has-text('ETH_USDC-PERPETUAL')", state="attached")
    page.wait_for_selector("#book tr.level.ask")
    assert page.errors == []
    page.close()


def test_a_dropped_websocket_shows_the_banner_then_reconnects(
    nodes: dict[str, Any], browser: Any
) -> None:
    page = open_page(browser, nodes["dev"] + "/#market")
    page.wait_for_selector("#book tr.level")
    wait_book_updates(page, 1)
    page.evaluate("window.strikechainDashboard.connection.socket.close()")
    page.wait_for_selector("#banner:not([hidden])")
    assert "Reconnecting" in (page.text_content("#banner-text") or "")
    screenshot(page, "reconnecting-laptop")
    page.wait_for_selector("#connection[data-state=open]")
    page.wait_for_selector("#banner", state="hidden")
    wait_book_updates(page)  # resubscribed: the snapshot, then live changes again
    started = time.monotonic()
    nodes["dev_process"].terminate()  # the node goes away: the page says so and keeps trying
    nodes["dev_process"].wait(timeout=30)
    page.wait_for_selector("#banner[data-state=down]")
    assert time.monotonic() - started < 30
    assert "not answering" in (page.text_content("#banner-text") or "")
    screenshot(page, "node-down-laptop")
    assert page.errors == []
    page.close()
