"""The test identity provider against a relying party built from Authlib, as Visio's is."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt
from joserfc.jwk import KeySet

from visio.testing.idp import IdentityProvider, sign_in
from visio.testing.server import free_port

pytestmark = pytest.mark.integration

REDIRECT_URI = f"http://127.0.0.1:{free_port()}/auth/callback"


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdentityProvider]:
    provider = IdentityProvider([REDIRECT_URI], tmp_path_factory.mktemp("idp"))
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture
async def browser() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@dataclass
class Flow:
    """One authorization as a relying party runs it: Authlib client, PKCE verifier, nonce."""

    idp: IdentityProvider
    metadata: dict[str, Any]
    rp: AsyncOAuth2Client
    code_verifier: str
    nonce: str
    state: str = ""
    callback: str = ""

    async def authorize(self, browser: httpx.AsyncClient, login: str, pkce: bool = True) -> None:
        url, self.state = self.rp.create_authorization_url(
            self.metadata["authorization_endpoint"],
            code_verifier=self.code_verifier if pkce else None,
            nonce=self.nonce,
        )
        response = await sign_in(browser, url, login, finish=False, relying_party=REDIRECT_URI)
        self.callback = response.headers["location"]
        assert self.callback.startswith(REDIRECT_URI + "?")

    async def exchange(self, secret: str | None = None) -> dict[str, Any]:
        self.rp.client_secret = secret or self.idp.client_secret
        return dict(
            await self.rp.fetch_token(
                self.metadata["token_endpoint"],
                authorization_response=self.callback,
                state=self.state,
                code_verifier=self.code_verifier,
            )
        )

    async def verified_id_token(self, token: dict[str, Any]) -> dict[str, Any]:
        jwks = await self.rp.request("GET", self.metadata["jwks_uri"], withhold_token=True)
        decoded = jwt.decode(token["id_token"], KeySet.import_key_set(jwks.json()))
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": self.idp.issuer},
            aud={"essential": True, "value": self.idp.client_id},
            nonce={"essential": True, "value": self.nonce},
            exp={"essential": True},
        ).validate(decoded.claims)
        return decoded.claims


@pytest.fixture
async def flow(idp: IdentityProvider) -> AsyncIterator[Flow]:
    async with AsyncOAuth2Client(
        idp.client_id,
        idp.client_secret,
        scope="openid email profile",
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
    ) as rp:
        discovery = f"{idp.issuer}/.well-known/openid-configuration"
        metadata = (await rp.request("GET", discovery, withhold_token=True)).json()
        yield Flow(idp, metadata, rp, generate_token(48), generate_token(16))


def query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


async def test_discovery_document(flow: Flow, idp: IdentityProvider):
    assert flow.metadata["issuer"] == idp.issuer
    assert flow.metadata["code_challenge_methods_supported"] == ["S256"]
    assert {"openid", "email", "profile"} <= set(flow.metadata["scopes_supported"])
    assert flow.metadata["response_types_supported"] == ["code"]


async def test_code_flow_with_pkce_gives_a_verified_id_token(flow: Flow, browser):
    await flow.authorize(browser, "alice")
    assert query(flow.callback)["state"] == flow.state
    token = await flow.exchange()
    claims = await flow.verified_id_token(token)
    expected = {"sub": "alice", "email": "alice@visio.test", "email_verified": True}
    assert {key: claims.get(key) for key in expected} == expected
    assert claims["name"] == "Alice"
    userinfo = (await flow.rp.get(flow.metadata["userinfo_endpoint"])).json()
    assert userinfo == {**expected, "name": "Alice"}


async def test_one_browser_signs_in_as_several_people_in_turn(flow: Flow, idp, browser):
    for login, name in (("bob", "Bob"), ("carol", "Carol")):
        flow.nonce = generate_token(16)
        await flow.authorize(browser, login)
        claims = await flow.verified_id_token(await flow.exchange())
        assert (claims["sub"], claims["name"]) == (login, name)


async def test_pkce_is_required(flow: Flow, browser):
    await flow.authorize(browser, "alice", pkce=False)
    answer = query(flow.callback)
    assert answer["error"] == "invalid_request"
    assert "code" not in answer


async def test_a_wrong_client_secret_fails_the_exchange(flow: Flow, browser):
    await flow.authorize(browser, "alice")
    with pytest.raises(OAuthError) as failure:
        await flow.exchange(secret="not-the-secret")
    assert failure.value.error == "invalid_client"
    assert "id_token" in await flow.exchange()


async def test_a_code_cannot_be_used_twice(flow: Flow, browser):
    await flow.authorize(browser, "alice")
    await flow.exchange()
    with pytest.raises(OAuthError) as failure:
        await flow.exchange()
    assert failure.value.error == "invalid_grant"
