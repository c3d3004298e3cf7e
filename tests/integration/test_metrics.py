"""/metrics: what an operator's Prometheus scrapes, and who may read it."""

from __future__ import annotations

import urllib.request

import pytest

from tests.conftest import start_server, stop_server

pytestmark = pytest.mark.integration


def scrape(server, token: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(server.base_url + "/metrics", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def value(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in the metrics")


async def test_metrics_follow_the_meetings(server, bots, room):
    _, before = scrape(server)
    alice = await bots.join(room, "Alice")
    bob = await bots.join(room, "Bob")
    await alice.wait_frames(bob.id, "video")
    status, text = scrape(server)
    assert status == 200
    assert value(text, "visio_meetings") >= 1
    assert value(text, "visio_participants") >= 2
    assert (
        value(text, 'visio_joins_total{outcome="joined"}')
        >= value(before, 'visio_joins_total{outcome="joined"}') + 2
    )
    assert value(text, "visio_join_seconds_count") >= 2
    assert value(text, f'visio_node_streams{{node="{server.janus_url}"}}') >= 4
    assert value(text, f'visio_node_up{{node="{server.janus_url}"}}') == 1
    assert 'visio_transcription_jobs{status="queued"}' in text
    await alice.send({"type": "nonsense"})
    await alice.wait_for(lambda f: f.get("code") == "unknown_type")
    assert value(scrape(server)[1], 'visio_errors_total{code="unknown_type"}') >= 1


def test_metrics_need_the_token_when_one_is_set():
    server, idp = start_server(idp=False, metrics_token="scrape-me-please")
    try:
        assert scrape(server)[0] == 403
        assert scrape(server, "wrong")[0] == 403
        status, text = scrape(server, "scrape-me-please")
        assert status == 200 and "visio_meetings" in text
    finally:
        stop_server(server, idp)
