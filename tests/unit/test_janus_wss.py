"""Remote media nodes over wss:// (audit L8): the Janus client speaks TLS and checks the
node's certificate against the CAs it is told to trust (SSL_CERT_FILE for a private CA).
A real TLS WebSocket server on loopback stands in for the node's API."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest
import websockets

from visio.janus.client import JanusConnection


def certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "node.pem", folder / "node.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=node", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_l8_the_janus_client_reaches_a_node_over_wss_and_checks_its_certificate(
    tmp_path, monkeypatch
):
    cert, key = certificate(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    seen: list[str | None] = []

    async def node(ws: websockets.ServerConnection) -> None:
        seen.append(ws.subprotocol)
        await ws.wait_closed()

    async with websockets.serve(
        node, "127.0.0.1", 0, ssl=tls, subprotocols=[websockets.Subprotocol("janus-protocol")]
    ) as server:
        port = server.sockets[0].getsockname()[1]
        url = f"wss://127.0.0.1:{port}"

        untrusted = JanusConnection(url, "secret")
        with pytest.raises(ssl.SSLCertVerificationError):
            await untrusted.connect(timeout=5)

        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the operator's private CA
        trusted = JanusConnection(url, "secret")
        await trusted.connect(timeout=5)
        assert trusted.connected and seen == ["janus-protocol"]
        await trusted.close()
