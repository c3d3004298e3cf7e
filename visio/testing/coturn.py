"""A throwaway coturn (Debian's `turnserver`) for tests, stopped by its process id.

It checks the `use-auth-secret` credentials the Visio server hands out (the same shared
secret), listens on the given addresses only, over UDP, TCP and TLS (a certificate made at
test time), and relays from the address Janus gathers on. Its config is the one
docs/OPERATIONS.md gives: private peers refused, except the media node. Everything stays
in the harness' network namespace.
"""

from __future__ import annotations

import datetime
import ipaddress
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from visio.testing.process import log_tail, stop_process
from visio.testing.server import free_port

TURNSERVER = "/usr/bin/turnserver"
REALM = "visio.test"
# Private, loopback and link-local ranges: a TURN server must not reach into its network.
DENIED_PEERS = (
    "0.0.0.0-0.255.255.255",
    "10.0.0.0-10.255.255.255",
    "100.64.0.0-100.127.255.255",
    "127.0.0.0-127.255.255.255",
    "169.254.0.0-169.254.255.255",
    "172.16.0.0-172.31.255.255",
    "192.168.0.0-192.168.255.255",
    "::1",
    "fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
)


def write_certificate(folder: Path, address: str) -> tuple[Path, Path]:
    """A self-signed certificate for `address` (its own trust anchor): (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, address)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "turn.crt", folder / "turn.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


class TurnServer:
    """coturn listening on `listen` (UDP, TCP and TLS), relaying from `relay`."""

    def __init__(self, listen: str, relay: str) -> None:
        if shutil.which(TURNSERVER) is None:
            raise RuntimeError(f"{TURNSERVER} not found: install the Debian package coturn")
        self.listen = listen
        self.relay = relay
        self.secret = secrets.token_urlsafe(24)
        self.port = free_port()
        self.tls_port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="visio-coturn-"))
        self.log_path = self.dir / "turnserver.log"
        self.cert, self.key = write_certificate(self.dir, listen)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def udp_url(self) -> str:
        return f"turn:{self.listen}:{self.port}?transport=udp"

    @property
    def tcp_url(self) -> str:
        return f"turn:{self.listen}:{self.port}?transport=tcp"

    @property
    def tls_url(self) -> str:
        return f"turns:{self.listen}:{self.tls_port}?transport=tcp"

    def config(self) -> str:
        """The documented production config (docs/OPERATIONS.md), on test addresses and
        ports: private peers are refused except the media node (`relay` is Janus' too)."""
        return "\n".join(
            [
                f"listening-ip={self.listen}",
                f"listening-port={self.port}",
                f"tls-listening-port={self.tls_port}",
                f"relay-ip={self.relay}",
                "min-port=40000",
                "max-port=40999",
                "use-auth-secret",
                f"static-auth-secret={self.secret}",
                f"realm={REALM}",
                f"cert={self.cert}",
                f"pkey={self.key}",
                "fingerprint",
                "no-dtls",
                "no-cli",
                "no-multicast-peers",
                "no-software-attribute",
                "no-rfc5780",
                "no-stun-backward-compatibility",
                *(f"denied-peer-ip={r}" for r in DENIED_PEERS),
                f"allowed-peer-ip={self.relay}",
                f"userdb={self.dir / 'turndb'}",
                f"pidfile={self.dir / 'turnserver.pid'}",
                f"log-file={self.log_path}",
                "simple-log",
                "verbose",
                "",
            ]
        )

    def command(self) -> list[str]:
        # Our own config file: without -c, turnserver would also read /etc/turnserver.conf.
        path = self.dir / "turnserver.conf"
        path.write_text(self.config())
        return [TURNSERVER, "-c", str(path)]

    def start(self, timeout: float = 10.0) -> None:
        self.process = subprocess.Popen(
            self.command(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"turnserver exited:\n{self.log_tail()}")
            if self._answers_tls():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"turnserver not ready in {timeout} s:\n{self.log_tail()}")

    def _answers_tls(self) -> bool:
        context = ssl.create_default_context(cafile=str(self.cert))
        try:
            with socket.create_connection((self.listen, self.tls_port), timeout=0.5) as raw:
                with context.wrap_socket(raw, server_hostname=self.listen):
                    return True
        except OSError:
            return False

    def stop(self, timeout: float = 5.0) -> int | None:
        return stop_process(self.process, timeout)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)
