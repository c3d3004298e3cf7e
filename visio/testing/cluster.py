"""A whole deployment at scale for tests and benchmarks, started and stopped by pid:
PostgreSQL, Redis, a pool of Janus media nodes, several `visio serve` processes sharing
them, and HAProxy in front.

Everything listens on loopback, and the media on the test veth: nothing leaves the test
network namespace.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from visio.testing.haproxy import HAProxyServer
from visio.testing.idp import IdentityProvider
from visio.testing.janus import JanusNodeProcess
from visio.testing.postgres import PostgresServer
from visio.testing.redis import RedisServer
from visio.testing.server import ServerProcess

RECLAIM_S = 20  # Janus keeps a dead server process's sessions this long for the next owner


class Deployment:
    def __init__(
        self, servers: int = 2, nodes: int = 1, sign_in: bool = True, **settings: Any
    ) -> None:
        self.postgres = PostgresServer()
        self.redis = RedisServer()
        api_secret, admin_key = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        self.nodes = [
            JanusNodeProcess(
                f"janus{i}",
                reclaim_session_timeout=RECLAIM_S,
                api_secret=api_secret,
                admin_key=admin_key,
            )
            for i in range(1, nodes + 1)
        ]
        self.cluster_secret = secrets.token_urlsafe(32)
        shared = {
            "redis_url": self.redis.url,
            "cluster_secret": self.cluster_secret,
            "database_url": self.postgres.url("visio"),
            "janus_urls": json.dumps([node.url for node in self.nodes]),
            "janus_api_secret": api_secret,
            "janus_admin_key": admin_key,
            "trusted_proxies": '["127.0.0.1"]',  # HAProxy, which sets X-Forwarded-For
            **settings,
        }
        self.servers = [ServerProcess(**shared) for _ in range(servers)]
        self.haproxy = HAProxyServer([("127.0.0.1", server.port) for server in self.servers])
        self.idp: IdentityProvider | None = None
        if sign_in:  # people sign in through HAProxy, as browsers would
            self.idp = IdentityProvider([self.base_url + "/auth/callback"], self.haproxy.dir)
            for server in self.servers:
                server.env.update(
                    VISIO_PUBLIC_URL=self.base_url,
                    VISIO_OIDC_ISSUER=self.idp.issuer,
                    VISIO_OIDC_CLIENT_ID=self.idp.client_id,
                    VISIO_OIDC_CLIENT_SECRET=self.idp.client_secret,
                    VISIO_GUESTS_CREATE_ROOMS="true",
                )

    @property
    def base_url(self) -> str:
        """Where clients go: HAProxy."""
        return self.haproxy.base_url

    def start(self) -> None:
        try:
            self.postgres.start()
            with ThreadPoolExecutor(1) as thread:  # callable from inside an event loop too
                thread.submit(asyncio.run, self.postgres.create_database("visio")).result()
            self.redis.start()
            if self.idp is not None:
                self.idp.start()
            for node in self.nodes:
                node.start()
            for server in self.servers:  # one at a time: the first migrates the database
                server.start()
            self.haproxy.start()
            self.wait_balanced()
        except BaseException:
            self.stop()
            raise

    def wait_balanced(self, timeout: float = 10.0) -> None:
        """Until HAProxy's health checks see every live server process up."""
        deadline = time.monotonic() + timeout
        live = [s for s in self.servers if s.process is not None and s.process.poll() is None]
        while time.monotonic() < deadline:
            seen = set()
            for _ in range(3 * len(live)):
                try:
                    with urllib.request.urlopen(self.base_url + "/healthz", timeout=2) as reply:
                        seen.add(json.loads(reply.read())["process"])
                except OSError:
                    pass
            if len(seen) >= len(live):
                return
            time.sleep(0.2)
        raise RuntimeError(f"HAProxy does not reach the {len(live)} server processes")

    def stop(self) -> None:
        self.haproxy.stop()
        if self.idp is not None:
            self.idp.stop()
        for server in self.servers:
            server.stop()
        for node in self.nodes:
            node.stop()
        self.redis.remove()
        self.postgres.stop()

    def create_room(self, name: str | None = None) -> str:
        return self.servers[0].create_room(name)
