"""The pre-join screen's connection test, on an open network and on one that blocks UDP.

coturn (UDP, TCP and TLS) is the server's relay. The open browser is the usual headless
Chromium in the harness' namespace. The locked-down one runs in a namespace of its own
whose nftables rules drop every UDP datagram (as tests/integration/test_turn.py's bot):
the test must say that UDP is blocked, that the relay over TCP works, and what to ask IT.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import CHROMIUM, PageErrors, firefox_pages
from tests.conftest import start_open_server, stop_server
from tests.integration.test_turn import udp_dropped
from visio.testing import netns
from visio.testing.chromium import CHROMIUM_ARGS
from visio.testing.coturn import TurnServer
from visio.testing.firefox import MOCK_SOUND, Firefox, FirefoxPage
from visio.testing.server import ServerProcess

pytestmark = pytest.mark.browser

MEDIA_PORTS = "30000-39999"  # the test server's Janus range (visio.testing.server)


@pytest.fixture(scope="module")
def turn_server(turn: TurnServer, udp_blocked_side: netns.SideNamespace) -> Iterator[ServerProcess]:
    """A server on every address of the namespace (the side one reaches it), with TURN over
    UDP, TCP and TLS."""
    process, provider = start_open_server(
        turn_urls=json.dumps([turn.udp_url, turn.tcp_url, turn.tls_url]), turn_secret=turn.secret
    )
    yield process
    stop_server(process, provider)


def trusts(turn: TurnServer) -> str:
    """A Chromium flag that trusts the test TURN server's certificate, as a deployment's
    browsers trust its real one (by the hash of its public key, nothing else)."""
    certificate = x509.load_pem_x509_certificate(turn.cert.read_bytes())
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    return f"--ignore-certificate-errors-spki-list={digest}"


@pytest.fixture
async def open_browser(browser: Browser, turn: TurnServer) -> AsyncIterator[Browser]:
    """Chromium in the harness' namespace, trusting the TURN server's certificate."""
    opened = await browser.browser_type.launch(
        executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, trusts(turn)]
    )
    yield opened
    await opened.close()


@pytest.fixture
async def blocked_browser(
    browser: Browser,
    turn: TurnServer,
    udp_blocked_side: netns.SideNamespace,
    turn_server: ServerProcess,
) -> AsyncIterator[Browser]:
    """Chromium in the UDP-blocked namespace (a wrapper enters it), for whom the server's
    address outside 127.0.0.1 counts as secure (camera and microphone)."""
    with tempfile.TemporaryDirectory(prefix="visio-blocked-chromium-") as folder:
        wrapper = udp_blocked_side.wrap(CHROMIUM, Path(folder))
        origin = f"http://{netns.ADDRESS}:{turn_server.port}"
        blocked = await browser.browser_type.launch(
            executable_path=str(wrapper),
            args=[
                *CHROMIUM_ARGS,
                trusts(turn),
                f"--unsafely-treat-insecure-origin-as-secure={origin}",
            ],
            env={**os.environ},
        )
        yield blocked
        await blocked.close()


async def new_page_of(browser: Browser, errors: PageErrors) -> Page:
    context = await browser.new_context(locale="en-US", viewport={"width": 1280, "height": 720})
    page = await context.new_page()
    page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
    return page


def test_the_test_gets_every_turn_url_with_short_lived_credentials(turn_server, turn):
    status, answer, headers = turn_server.request("GET", "/api/connection-test")
    assert status == 200
    assert headers["cache-control"] == "no-store"
    assert answer["media_ports"] == MEDIA_PORTS
    [server] = answer["ice_servers"]
    assert server["urls"] == [turn.udp_url, turn.tcp_url, turn.tls_url]
    expiry, user = server["username"].split(":")
    assert 0 < int(expiry) - time.time() <= 300
    assert re.fullmatch(r"test-[0-9a-f]{12}", user)  # nobody's participant id


async def run_connection_test(page: Page, url: str) -> dict[str, str]:
    """Opens the pre-join screen, runs the test; {check: status} once it has a verdict."""
    await page.goto(url)
    # The room's page and the camera preview: a few seconds on a loaded machine.
    await expect(page.locator("#prejoin")).to_be_visible(timeout=15_000)
    await expect(page.locator("#preview-video")).to_have_js_property(
        "readyState", 4, timeout=15_000
    )
    await page.get_by_role("button", name="Test my connection").click()
    await expect(
        page.locator("#connection-test-summary[data-verdict]:not([data-verdict=''])")
    ).to_be_attached(timeout=20_000)
    items = page.locator("#connection-test-results li")
    return {
        await item.get_attribute("data-check"): await item.get_attribute("data-status")
        for item in await items.all()
    }


async def test_open_network_passes_every_check(turn_server, open_browser):
    errors = PageErrors()
    page = await new_page_of(open_browser, errors)
    room = turn_server.create_room()

    statuses = await run_connection_test(page, f"{turn_server.base_url}/{room}")

    assert statuses == {
        "server": "ok",
        "udp": "ok",
        "tcp": "ok",
        "tls": "ok",
        "camera": "ok",
        "microphone": "ok",
    }
    summary = page.get_by_role("status").filter(has_text="All good")
    await expect(summary).to_contain_text("your network is ready for meetings")
    await expect(page.locator("#connection-test-advice")).to_be_empty()
    # Real buttons and a live region: the results are announced, in the reader's language.
    await expect(page.get_by_role("button", name="Test again")).to_be_enabled()
    await page.select_option("select[data-language-picker]", "fr")
    await expect(page.get_by_role("status").filter(has_text="Tout est bon")).to_contain_text(
        "votre réseau est prêt pour les réunions"
    )
    udp = page.locator("#connection-test-results li[data-check='udp']")
    await expect(udp.locator(".check-name")).to_have_text("Son et vidéo en UDP")
    await expect(udp.locator(".check-status")).to_have_text("Fonctionne")
    assert not errors, errors


async def test_blocked_udp_is_reported_with_what_to_ask_it(
    turn_server, turn, udp_blocked_side, blocked_browser
):
    room = turn_server.create_room()
    errors = PageErrors()
    page = await new_page_of(blocked_browser, errors)
    dropped_before = udp_dropped(udp_blocked_side)

    statuses = await run_connection_test(page, f"http://{netns.ADDRESS}:{turn_server.port}/{room}")

    assert statuses["server"] == "ok"
    assert statuses["udp"] == "fail", statuses
    assert statuses["tcp"] == "ok" and statuses["tls"] == "ok", (statuses, turn.log_tail())
    assert statuses["camera"] == "ok" and statuses["microphone"] == "ok", statuses
    # It did try UDP, and the firewall dropped it.
    assert udp_dropped(udp_blocked_side) > dropped_before
    outcome = page.get_by_role("status").filter(has_text="relay server")
    await expect(outcome).to_contain_text("Meetings will work, through the relay server")
    advice = page.locator("#connection-test-advice")
    await expect(advice).to_contain_text("What to tell your IT department")
    await expect(advice).to_contain_text(
        f"Allow outgoing UDP to {netns.SIDE_ADDRESS}, port {turn.port} (the relay server)."
    )
    low, high = MEDIA_PORTS.split("-")
    await expect(advice).to_contain_text(re.compile(rf"media servers, ports {low}.{high}\."))
    assert "TCP" not in await advice.inner_text()  # only what is blocked
    assert not errors, errors


# {check: status} once the connection test has a verdict; null before.
STATUSES = """() => {
    const verdict = document.querySelector('#connection-test-summary')?.dataset.verdict;
    if (!verdict) return null;
    const items = document.querySelectorAll('#connection-test-results li');
    return Object.fromEntries([...items].map((li) => [li.dataset.check, li.dataset.status]));
}"""


OUTCOME = """() => ({
    verdict: document.querySelector('#connection-test-summary').dataset.verdict,
    advice: document.querySelector('#connection-test-advice').textContent,
})"""


@pytest.fixture
async def sounding_firefox() -> AsyncIterator[Firefox]:
    """A Firefox with a mock sound device, without which its microphone meter reads
    nothing here (the other Firefox tests run without, as before)."""
    firefox = Firefox(prefs=MOCK_SOUND)
    await firefox.start()
    yield firefox
    await firefox.close()


async def test_firefox_passes_the_test_on_an_open_network(turn_server, sounding_firefox):
    async for new_firefox_page in firefox_pages(sounding_firefox):
        await firefox_passes(turn_server, await new_firefox_page())


@pytest.fixture
async def blocked_firefox(udp_blocked_side: netns.SideNamespace) -> AsyncIterator[Firefox]:
    """A Firefox in the UDP-blocked namespace, with a mock sound device, allowed the camera
    and microphone on the server's plain-HTTP address (a secure context, as for Chromium)."""
    prefs = {**MOCK_SOUND, "dom.securecontext.allowlist": netns.ADDRESS}
    firefox = Firefox(prefs=prefs, under=udp_blocked_side.command())
    await firefox.start()
    yield firefox
    await firefox.close()


async def test_firefox_reports_blocked_udp(turn_server, turn, udp_blocked_side, blocked_firefox):
    async for new_firefox_page in firefox_pages(blocked_firefox):
        page = await new_firefox_page()
        await page.goto(f"http://{netns.ADDRESS}:{turn_server.port}/{turn_server.create_room()}")
        await page.wait_for("() => document.querySelector('#preview-video')?.readyState === 4")
        dropped_before = udp_dropped(udp_blocked_side)
        await page.click("#connection-test-run")

        statuses = await page.wait_for(STATUSES, timeout=20)

        assert udp_dropped(udp_blocked_side) > dropped_before
        assert statuses == {
            "server": "ok",
            "udp": "fail",
            "tcp": "ok",
            "tls": "fail",  # the test certificate, as above
            "camera": "ok",
            "microphone": "ok",
        }
        outcome = await page.evaluate(OUTCOME)
        assert outcome["verdict"] == "relayed", outcome
        assert f"Allow outgoing UDP to {netns.SIDE_ADDRESS}, port {turn.port}" in outcome["advice"]
        assert "ports 30000–39999" in outcome["advice"]


async def firefox_passes(turn_server: ServerProcess, page: FirefoxPage) -> None:
    await page.goto(f"{turn_server.base_url}/{turn_server.create_room()}")
    await page.wait_for("() => document.querySelector('#preview-video')?.readyState === 4")
    await page.click("#connection-test-run")

    statuses = await page.wait_for(STATUSES, timeout=20)

    # Firefox has no switch to trust one certificate, as Chromium has: it refuses the test
    # TURN server's self-signed one, so TURN over TLS is the one way it cannot take here.
    assert statuses == {
        "server": "ok",
        "udp": "ok",
        "tcp": "ok",
        "tls": "fail",
        "camera": "ok",
        "microphone": "ok",
    }
    outcome = await page.evaluate(OUTCOME)
    assert outcome == {"verdict": "ready", "advice": ""}, outcome
