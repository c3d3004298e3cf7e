"""HTTPS settings (audit L7): public_url required with sign-in, HSTS and Secure cookies on
HTTPS only; and security.txt, where vulnerabilities are reported (docs/SECURITY.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from visio.config import ConfigError, load_settings
from visio.server import create_app


def test_sign_in_needs_a_public_url(tmp_path):
    with pytest.raises(ConfigError, match="oidc_issuer needs public_url"):
        load_settings(data_dir=tmp_path, oidc_issuer="https://idp.example", oidc_client_id="v")
    with pytest.raises(ConfigError, match="public_url must start with https://"):
        load_settings(data_dir=tmp_path, public_url="visio.example.org")


@pytest.mark.parametrize(
    ("public_url", "hsts"),
    [("https://visio.example.org", "max-age=31536000"), ("http://10.0.0.5:8080", None)],
)
def test_hsts_is_sent_on_https_only(tmp_path, public_url, hsts):
    settings = load_settings(data_dir=tmp_path, public_url=public_url)
    response = TestClient(create_app(settings)).get("/static/js/protocol.js")  # no lifespan
    assert response.status_code == 200
    assert response.headers.get("strict-transport-security") == hsts
    cookies = response.headers.get_list("set-cookie")
    assert cookies and all(("Secure" in c) == bool(hsts) for c in cookies)


def test_security_txt_names_the_contact(tmp_path):
    settings = load_settings(
        data_dir=tmp_path,
        public_url="https://visio.example.org",
        security_contact="mailto:security@example.org",
    )
    response = TestClient(create_app(settings)).get("/.well-known/security.txt")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    fields = dict(line.split(": ", 1) for line in response.text.splitlines())
    assert fields["Contact"] == "mailto:security@example.org"
    assert datetime.fromisoformat(fields["Expires"]) > datetime.now(UTC) + timedelta(days=300)
    assert fields["Canonical"] == "https://visio.example.org/.well-known/security.txt"
    unset = TestClient(create_app(load_settings(data_dir=tmp_path / "other")))
    assert unset.get("/.well-known/security.txt").status_code == 404
    with pytest.raises(ConfigError, match="security_contact"):
        load_settings(data_dir=tmp_path, security_contact="security@example.org")
