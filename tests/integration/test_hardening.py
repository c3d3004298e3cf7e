"""Points of docs/SECURITY.md's hardening checklist not tested elsewhere, on the real server."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

pytestmark = pytest.mark.integration


async def test_another_site_cannot_send_the_csrf_header(server):
    """The CSRF header needs a CORS preflight, which the server never grants: a page of
    another site cannot send it, whatever cookie it managed to plant."""
    status, _, headers = server.request(
        "OPTIONS",
        "/api/rooms",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-csrf-token, content-type",
        },
    )
    assert status >= 400
    assert not any(h.lower().startswith("access-control-allow") for h in headers)


async def test_signing_out_needs_the_csrf_token_too(people):
    alice = await people.signed_in("alice")
    forged = await alice.http.post("/auth/logout")  # a cross-site form would send this
    assert forged.status_code == 403
    assert (await alice.api("GET", "/api/me")).json()["user"] is not None


def test_plain_http_gets_no_hsts_and_no_secure_cookies(server):
    """The run's server is reached over http://127.0.0.1: HSTS there would be a lie, and
    Secure cookies would never come back (tests/unit/test_audit.py: HTTPS sends both)."""
    status, _, headers = server.request("GET", "/", headers={"Cookie": ""})
    assert status == 200
    lowered = {name.lower(): value for name, value in headers.items()}
    assert "strict-transport-security" not in lowered
    assert "visio_" in lowered["set-cookie"] and "secure" not in lowered["set-cookie"].lower()


def test_janus_listens_on_loopback_only_and_has_no_admin_api(server):
    """Every TCP port the server's Janus listens on: its API, on loopback (no admin API,
    no HTTP transport, no demo plugin)."""
    children = subprocess.run(
        ["ps", "--ppid", str(server.process.pid), "-o", "pid=,comm="],
        capture_output=True,
        text=True,
    ).stdout.split("\n")
    (pid,) = [line.split()[0] for line in children if line.strip().endswith("janus")]
    listening = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
    janus = [line for line in listening.splitlines() if f"pid={pid}," in line]
    assert janus, listening
    assert all(line.split()[3] == f"127.0.0.1:{server.janus_port}" for line in janus), janus


async def test_chat_is_kept_for_the_meeting_only(bots, room):
    """Chat lives in the meeting's memory (and, with several processes, its journal in
    Redis): the next meeting in the same room starts with none, and nothing is on disk."""
    alice = await bots.join(room, "Alice", publish=False)
    await alice.chat_send("said in the first meeting")
    await alice.wait_for(lambda f: f["type"] == "chat")
    bob = await bots.join(room, "Bob", publish=False)
    assert [m["text"] for m in bob.joined["chat"]] == ["said in the first meeting"]
    await alice.leave()
    await bob.leave()
    await asyncio.sleep(0.5)  # the last one out ends the meeting
    carol = await bots.join(room, "Carol", publish=False)
    assert carol.joined["chat"] == [] and carol.joined["chat_earlier"] == 0
