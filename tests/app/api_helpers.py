"""Helpers for the JSON API tests: a signed-in user makes a token on the settings page, as a person would."""

from __future__ import annotations

import re

from tests.app.test_accounts import signup
from tests.conftest import csrf_of

SECRET = re.compile(r"data-token-secret>([^<]+)<")


def make_token(client, username: str = "alice", scopes: tuple[str, ...] = ("read", "write"),  # noqa: ANN001
               name: str = "script", sign_up: bool = True) -> dict[str, str]:
    """Authorization headers with a fresh token of ``username`` (signed up first unless ``sign_up`` is False)."""
    if sign_up:
        signup(client, username=username)
    page = client.post("/settings/tokens", data={"name": name, "scopes": list(scopes),
                                                 "csrf_token": csrf_of(client, "/settings/tokens")})
    assert page.status_code == 200, page.text
    return {"authorization": f"Bearer {SECRET.search(page.text).group(1)}"}
