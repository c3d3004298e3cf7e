"""The test OpenID Connect provider (tests/idp, panva's oidc-provider) and a sign-in over HTTP.

`IdentityProvider` runs `node tests/idp/provider.mjs` on a free loopback port; any login
name signs in as `{login}@visio.test`. `sign_in` walks a real authorization code flow the
way a browser would, one redirect at a time, filling the provider's login and consent forms.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from visio.testing.process import log_tail, open_log, stop_process
from visio.testing.server import free_port

IDP_DIR = Path(__file__).resolve().parents[2] / "tests" / "idp"


class IdentityProvider:
    """An OpenID Connect provider on 127.0.0.1 with one confidential client."""

    def __init__(
        self, redirect_uris: Sequence[str], log_dir: Path, client_id: str = "visio"
    ) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.client_id = client_id
        self.client_secret = secrets.token_urlsafe(16)
        self.redirect_uris = list(redirect_uris)
        self.log_path = Path(log_dir) / "idp.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> None:
        node = shutil.which("node")
        if node is None or not (IDP_DIR / "node_modules").is_dir():
            raise RuntimeError(
                "the test identity provider needs node and `npm ci --prefix tests/idp` (test.sh)"
            )
        env = {
            **os.environ,
            "IDP_PORT": str(self.port),
            "IDP_ISSUER": self.issuer,
            "IDP_CLIENT_ID": self.client_id,
            "IDP_CLIENT_SECRET": self.client_secret,
            "IDP_REDIRECT_URIS": ",".join(self.redirect_uris),
        }
        with open_log(self.log_path) as log:
            self.process = subprocess.Popen(
                [node, str(IDP_DIR / "provider.mjs")],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"identity provider exited early:\n{self.log_tail()}")
            if "ready" in self.log_tail().splitlines():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"identity provider not ready in {timeout} s:\n{self.log_tail()}")

    def stop(self) -> int | None:
        return stop_process(self.process, timeout=5)

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)


class _Form:
    def __init__(self, action: str, method: str) -> None:
        self.action = action
        self.method = method
        self.fields: dict[str, str] = {}
        self.passwords: list[str] = []


class _Page(HTMLParser):
    """A page's forms, with the values a browser would submit (no button named), and text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.forms: list[_Form] = []
        self.words: list[str] = []
        self._in_form = False
        self._hidden = 0
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {name: value or "" for name, value in attrs}
        self._hidden += tag in ("head", "style", "script")
        if tag == "form":
            self.forms.append(_Form(attr.get("action", ""), attr.get("method", "get").lower()))
            self._in_form = True
        elif tag == "input" and self._in_form and attr.get("name"):
            kind = attr.get("type", "text").lower()
            if kind in ("submit", "button", "reset", "image"):
                return
            if kind in ("checkbox", "radio") and "checked" not in attr:
                return
            self.forms[-1].fields[attr["name"]] = attr.get("value", "")
            if kind == "password":
                self.forms[-1].passwords.append(attr["name"])

    def handle_endtag(self, tag: str) -> None:
        self._hidden -= tag in ("head", "style", "script")
        if tag == "form":
            self._in_form = False

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.words.extend(data.split())


def _origin(url: str | httpx.URL) -> tuple[str, str]:
    parts = urlsplit(str(url))
    return parts.scheme, parts.netloc


def _fail(response: httpx.Response, problem: str) -> AssertionError:
    return AssertionError(
        f"sign-in: {problem} at {response.request.method} {response.url} "
        f"(HTTP {response.status_code}): {' '.join(_Page(response.text).words)[:400]}"
    )


async def sign_in(
    client: httpx.AsyncClient,
    start_url: str,
    login: str,
    *,
    finish: bool = True,
    relying_party: str | None = None,
) -> httpx.Response:
    """Sign in as `login` from `start_url` (the relying party's /auth/login, say).

    Stops at the first redirect from elsewhere to the relying party's origin (that of
    `relying_party`, by default of `start_url`): with `finish` it fetches that callback, so
    the relying party sets its cookies in `client`, and returns its response unfollowed;
    without, it returns the redirect to the callback.
    """
    home = _origin(relying_party or start_url)
    response = await client.get(start_url, follow_redirects=False)
    for _ in range(20):
        if response.is_redirect:
            target = urljoin(str(response.url), response.headers["location"])
            if _origin(response.url) != home and _origin(target) == home:
                return await client.get(target, follow_redirects=False) if finish else response
            response = await client.get(target, follow_redirects=False)
            continue
        if response.status_code != 200:
            raise _fail(response, "unexpected answer")
        form = next((form for form in _Page(response.text).forms if form.method == "post"), None)
        if form is None:
            raise _fail(response, "page without a form to submit")
        if "login" in form.fields:
            form.fields["login"] = login
            form.fields.update(dict.fromkeys(form.passwords, "any password"))
        action = urljoin(str(response.url), form.action)
        response = await client.post(action, data=form.fields, follow_redirects=False)
    raise _fail(response, "too many steps")
