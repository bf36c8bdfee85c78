"""The operator's whole day in a real browser: Debian's Chromium driven by Playwright.

The app runs under uvicorn on loopback (syncs and pushes on its job threads),
against the Spartoo sandbox and a loopback image server. Chromium is the
system one (``/usr/bin/chromium``, else ``chromium`` on the PATH); Playwright
never downloads a browser. The fixture is our own, so that
``pytest-playwright`` (whose deprecation warning breaks ``filterwarnings =
error``) is not needed.

Screenshots of the main pages go to ``tmp_path``, and also to the folder
named by ``$CONNECTOR_HOST_SCREENSHOTS`` (``docs/screenshots`` to refresh the
README's pictures).
"""

from __future__ import annotations

import io
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pypdf
import pytest
import uvicorn
from connector_spartoo.sandbox.server import SpartooSandbox
from web_support import PASSWORD, ImageServer, add_catalogue, sandbox_skus

from connector_core.db import OrderBook
from connector_core.plugins import PluginHost
from connector_core.web import records
from connector_core.web.app import WebConfig, create_app

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 20_000


def _chromium() -> str | None:
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless system Chromium (the test is skipped, saying why, when there is none)."""
    executable = _chromium()
    if executable is None:
        pytest.skip("no Chromium found (/usr/bin/chromium or chromium on PATH): apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


class Server:
    """The web app served by uvicorn on a free loopback port, in a thread."""

    def __init__(self, app: Any) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = ""

    def __enter__(self) -> Server:
        self.thread.start()
        for _ in range(400):
            if self.server.started:
                break
            self.thread.join(0.05)
        assert self.server.started, "uvicorn did not start"
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def _shots(tmp_path: Path) -> list[Path]:
    folders = [tmp_path / "screenshots"]
    extra = os.environ.get("CONNECTOR_HOST_SCREENSHOTS")
    if extra:
        folders.append(Path(extra))
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    return folders


def _submit(page: Any, selector: str) -> None:
    """Click a form's button and wait for the page it leads to."""
    with page.expect_navigation():
        page.click(selector)


# The waits below use Playwright's locator assertions and evaluate(), never wait_for_function(): in
# Playwright 1.46 (the lowest release allowed) its polling runs the predicate through eval() inside the
# page, which the web app's Content-Security-Policy (script-src 'self') refuses, so such a wait failed
# whenever its first check was not already true.


def _wait_for_runs(page: Any, base: str) -> None:
    """Reload /runs until no run is going (bounded by WAIT_MS)."""
    from playwright.sync_api import expect

    page.goto(f"{base}/runs")
    expect(page.locator("[data-state=running]")).to_have_count(0, timeout=WAIT_MS)
    page.reload()


def _until(page: Any, script: str, what: str) -> None:
    """Evaluate ``script`` in the page every 100 ms until it is true; fail saying ``what`` after WAIT_MS."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while not page.evaluate(script):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {WAIT_MS} ms")
        page.wait_for_timeout(100)


def test_operator_flow_in_chromium(browser: Any, host: PluginHost, images: ImageServer, tmp_path: Path) -> None:
    """Log in, connect Spartoo (wrong then right partner ID), brand, sync, filter, open, ship, push, print."""
    from playwright.sync_api import expect

    folders = _shots(tmp_path)

    def shot(page: Any, name: str) -> None:
        for folder in folders:
            page.screenshot(path=str(folder / f"{name}.png"), full_page=True)

    path = tmp_path / "orders.sqlite3"
    with SpartooSandbox(orders=60) as sandbox:
        add_catalogue(path, sandbox_skus(sandbox, host, tmp_path / "scratch.sqlite3"), images)
        with OrderBook(path) as book:
            records.add_user(book.conn, "ana", PASSWORD)
        app = create_app(WebConfig(db=path, host_factory=lambda: host))
        with Server(app) as server:
            context = browser.new_context(viewport={"width": 1360, "height": 900})
            page = context.new_page()
            page.set_default_timeout(WAIT_MS)
            base = server.url

            # log in
            page.goto(f"{base}/orders")
            assert page.url.startswith(f"{base}/login")
            shot(page, "login")
            page.fill("input[name=username]", "ana")
            page.fill("input[name=password]", PASSWORD)
            _submit(page, "button[type=submit]")
            assert page.url == f"{base}/orders"

            # connect: the tile, a wrong partner ID, then the right one
            page.click("nav >> text=Connect")
            shot(page, "connect")
            page.click("a[data-marketplace=spartoo]")
            settings = sandbox.settings()
            page.fill("#f-store_name", "spartoo-fr")
            page.fill("#f-partner_id", "WRONG0000PARTNER")
            page.select_option("#f-sites", settings["sites"])
            page.fill("#f-base_url", settings["base_url"])
            _submit(page, "button:has-text('Connect')")
            error = page.inner_text("#connect-error")
            assert "partner ID may be wrong" in error
            assert page.input_value("#f-partner_id") == ""
            assert page.input_value("#f-base_url") == settings["base_url"]
            shot(page, "connect-refused")
            page.fill("#f-partner_id", settings["partner_id"])
            _submit(page, "button:has-text('Connect')")
            assert page.url == f"{base}/stores/spartoo-fr/settings"
            assert "connected to Spartoo" in page.inner_text(".flash")

            # branding, with the e-mail preview
            page.fill("input[name='branding.display_name']", "Chaussures Ana")
            page.fill("input[name='branding.sender_email']", "shop@example.com")
            page.fill("input[name='branding.accent_colour']", "#117733")
            _submit(page, "button:has-text('Save host settings')")
            assert "host settings saved" in page.inner_text(".flash")
            preview = page.frame_locator("iframe[title='Shipment e-mail preview']")
            assert "Chaussures Ana" in preview.locator("body").inner_text()
            shot(page, "store-settings")

            # sync now, on the job threads; the runs page shows the result
            _submit(page, "button:has-text('Sync now')")
            _wait_for_runs(page, base)
            assert "fetched" in page.inner_text("table.runs")
            shot(page, "runs")
            page.goto(f"{base}/stores")
            shot(page, "stores")

            # filter the orders (partial updates by the page's script)
            page.goto(f"{base}/orders")
            all_count = page.inner_text("#order-count")
            page.select_option("select[name=status]", "awaiting_shipment")
            expect(page.locator("#order-count")).not_to_have_text(all_count, use_inner_text=True, timeout=WAIT_MS)
            assert "status=awaiting_shipment" in page.url
            rows = page.locator("table.orders tbody tr")
            assert rows.count() > 0
            assert all("awaiting shipment" in rows.nth(i).inner_text() for i in range(rows.count()))
            shot(page, "orders")

            # one order, with its thumbnails
            page.click("table.orders tbody tr >> nth=0 >> a")
            page.wait_for_selector("img.thumb")
            order_url = page.url
            key = order_url.split("/orders/")[1].split("?")[0]
            _until(
                page,
                "() => [...document.querySelectorAll('img.thumb')].every(i => i.complete && i.naturalWidth > 0)",
                "the order's thumbnails loaded",
            )
            shot(page, "order")

            # ship it, push, see the marketplace's answer
            page.fill("input[name=tracking]", "6A1234567890")
            page.fill("input[name=carrier]", "Colissimo")
            page.fill("input[name=service]", "Expert")
            page.fill("input[name=fee]", "6.90")
            page.fill("input[name=notes_to_buyer]", "Merci !")
            _submit(page, "button:has-text('Record shipment')")
            assert "is in the outbox" in page.inner_text(".flash")
            page.goto(f"{base}/stores/spartoo-fr")
            _submit(page, "button:has-text('Push shipments')")
            _wait_for_runs(page, base)
            page.goto(order_url)
            assert page.inner_text("#order-status") == "shipped"
            shipments = page.inner_text("table.shipments")
            assert "pushed" in shipments and "tracking_number" in shipments and "sent" in shipments
            page.goto(f"{base}/shipments")
            shot(page, "shipments")
            on_spartoo = {o["order_key"]: o for o in sandbox.orders()}
            assert on_spartoo[key.replace("%3A", ":")]["tracking_number"] == "6A1234567890"

            # the packing slip: a PDF with the order's SKUs
            href = page.goto(order_url) and page.get_attribute("#packing-slip", "href")
            assert href is not None
            answer = context.request.get(base + href)
            assert answer.status == 200 and answer.headers["content-type"] == "application/pdf"
            text = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(answer.body())).pages)
            with OrderBook(path) as book:
                order = book.get_order("spartoo-fr", key.replace("%3A", ":"))
            for item in order.items:
                assert item.sku and item.sku in text
            context.close()
