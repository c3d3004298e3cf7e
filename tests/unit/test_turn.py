"""turn: coturn use-auth-secret credentials and the ICE server list."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from visio.config import Settings
from visio.turn import ice_servers, turn_credentials


def expected_password(secret: str, username: str) -> str:
    mac = hmac.new(secret.encode(), username.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def test_username_is_expiry_colon_user():
    creds = turn_credentials("s3cret", "p-3f9c2a1b", 3600, now=1_700_000_000.7)
    assert creds["username"] == "1700003600:p-3f9c2a1b"


def test_credential_is_base64_hmac_sha1_of_the_username():
    creds = turn_credentials("s3cret", "p-3f9c2a1b", 3600, now=1_700_000_000)
    assert creds["credential"] == expected_password("s3cret", "1700003600:p-3f9c2a1b")
    assert len(base64.b64decode(creds["credential"])) == 20


def test_credential_depends_on_the_secret():
    one = turn_credentials("a", "u", 60, now=0)
    two = turn_credentials("b", "u", 60, now=0)
    assert one["username"] == two["username"]
    assert one["credential"] != two["credential"]


def test_expiry_is_now_plus_ttl_by_default():
    before = int(time.time())
    creds = turn_credentials("s", "u", 86400)
    expiry = int(creds["username"].split(":")[0])
    assert before + 86400 <= expiry <= int(time.time()) + 86400


def test_no_ice_servers_without_configuration():
    assert ice_servers(Settings(), "p-1") == []


def test_turn_urls_without_a_secret_give_no_turn_server():
    assert ice_servers(Settings(turn_urls=["turn:t.example.org:3478"]), "p-1") == []


def test_stun_only():
    settings = Settings(stun_urls=["stun:stun.example.org:3478"])
    assert ice_servers(settings, "p-1") == [{"urls": ["stun:stun.example.org:3478"]}]


def test_turn_server_with_credentials_for_the_participant():
    settings = Settings(
        stun_urls=["stun:s.example.org"],
        turn_urls=["turn:t.example.org:3478", "turns:t.example.org:5349"],
        turn_secret="shared",
        turn_ttl_s=600,
    )
    before = int(time.time())
    stun, turn = ice_servers(settings, "p-3f9c2a1b")
    assert stun == {"urls": ["stun:s.example.org"]}
    assert turn["urls"] == ["turn:t.example.org:3478", "turns:t.example.org:5349"]
    expiry, user = turn["username"].split(":")
    assert user == "p-3f9c2a1b"
    assert before + 600 <= int(expiry) <= int(time.time()) + 600
    assert turn["credential"] == expected_password("shared", turn["username"])


def test_returned_url_lists_are_copies():
    settings = Settings(stun_urls=["stun:s"])
    ice_servers(settings, "p")[0]["urls"].append("stun:evil")
    assert settings.stun_urls == ["stun:s"]
