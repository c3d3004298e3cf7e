"""The bot's choice of ICE servers from the `joined` frame: TURN URLs by transport."""

from __future__ import annotations

import pytest

from visio.client import VisioClient
from visio.client.session import ice_servers, turn_transport_of

TCP = "turn:turn.example.org:3478?transport=tcp"
UDP = "turn:turn.example.org:3478?transport=udp"
TLS = "turns:turn.example.org:443?transport=tcp"
SERVERS = [
    {"urls": ["stun:stun.example.org:3478"]},
    {"urls": [UDP, TCP, TLS], "username": "1700003600:p-1", "credential": "c2VjcmV0"},
]


@pytest.mark.parametrize(
    ("url", "transport"),
    [
        (UDP, "udp"),
        ("turn:turn.example.org", "udp"),
        (TCP, "tcp"),
        ("turn:turn.example.org:3478?TRANSPORT=TCP", "tcp"),
        (TLS, "tls"),
        ("stun:stun.example.org:3478", None),
    ],
)
def test_turn_transport_of_a_url(url, transport):
    assert turn_transport_of(url) == transport


def test_every_server_kept_without_a_transport():
    chosen = ice_servers(SERVERS)
    assert [s.urls for s in chosen] == [["stun:stun.example.org:3478"], [UDP, TCP, TLS]]
    assert (chosen[1].username, chosen[1].credential) == ("1700003600:p-1", "c2VjcmV0")


@pytest.mark.parametrize(("transport", "url"), [("udp", UDP), ("tcp", TCP), ("tls", TLS)])
def test_only_the_turn_urls_of_the_chosen_transport(transport, url):
    chosen = ice_servers(SERVERS, transport)
    assert [s.urls for s in chosen] == [["stun:stun.example.org:3478"], [url]]


def test_a_server_left_without_urls_is_dropped():
    chosen = ice_servers([{"urls": TCP, "username": "u", "credential": "c"}], "tls")
    assert chosen == []


def test_an_unknown_transport_is_refused():
    with pytest.raises(ValueError, match="turn_transport"):
        VisioClient("http://127.0.0.1:1", "abc-defg-hij", "Bot", turn_transport="sctp")
