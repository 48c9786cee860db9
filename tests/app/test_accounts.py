import pytest

from app.server.web_session import COOKIE_NAME
from tests.conftest import csrf_of

pytestmark = pytest.mark.both_databases


def signup(client, username="alice", password="correct horse", csrf=None):
    csrf = csrf or csrf_of(client)
    return client.post("/signup", data={"username": username, "password": password, "csrf_token": csrf},
                       headers={"hx-request": "true"})


def login(client, username="alice", password="correct horse"):
    csrf = csrf_of(client)
    return client.post("/login", data={"username": username, "password": password},
                       headers={"hx-request": "true", "x-csrf-token": csrf})


def test_signup_logs_in_and_shows_the_account(client):
    response = signup(client)
    assert response.status_code == 200
    assert response.headers["hx-redirect"] == "/"
    page = client.get("/", headers={"accept": "text/html"})
    assert 'aria-label="Your profile"' in page.text
    assert "Log out" in page.text


def test_signup_rejects_a_taken_username_and_bad_credentials(client):
    assert signup(client).status_code == 200
    client.cookies.clear()
    response = signup(client)
    assert response.status_code == 409
    assert "taken" in response.text
    client.cookies.clear()
    assert signup(client, username="bob", password="short").status_code == 400
    assert signup(client, username="no spaces!", password="long enough pw").status_code == 400


def test_login_logout_and_wrong_password(client):
    signup(client)
    csrf = csrf_of(client)
    assert client.post("/logout", data={"csrf_token": csrf}).status_code in (200, 303)
    page = client.get("/", headers={"accept": "text/html"})
    assert "Log out" not in page.text

    wrong = login(client, password="not the password")
    assert wrong.status_code == 401
    assert "Wrong username or password" in wrong.text

    ok = login(client)
    assert ok.status_code == 200 and ok.headers["hx-redirect"] == "/"
    assert "Log out" in client.get("/", headers={"accept": "text/html"}).text


def test_session_id_rotates_at_login_and_the_old_id_is_dead(client):
    signup(client, username="carol")
    client.post("/logout", data={"csrf_token": csrf_of(client)})
    csrf_of(client)
    before = client.cookies.get(COOKIE_NAME)
    assert login(client, username="carol").status_code == 200
    after = client.cookies.get(COOKIE_NAME)
    assert before and after and before != after
    # Replaying the pre-login cookie does not give the signed-in session (session fixation).
    client.cookies.set(COOKIE_NAME, before)
    assert "Log out" not in client.get("/", headers={"accept": "text/html"}).text
    client.cookies.set(COOKIE_NAME, after)
    assert "Log out" in client.get("/", headers={"accept": "text/html"}).text


def test_state_changing_request_without_csrf_token_is_refused(client):
    csrf_of(client)
    response = client.post("/signup", data={"username": "mallory", "password": "long enough pw"})
    assert response.status_code == 403
    response = client.post("/signup", data={"username": "mallory", "password": "long enough pw"},
                           headers={"x-csrf-token": "forged"})
    assert response.status_code == 403
    # ...and nothing was created: the real sign-up still finds the name free.
    assert signup(client, username="mallory", password="long enough pw").status_code == 200


def test_login_is_rate_limited(client):
    signup(client, username="dave")
    client.post("/logout", data={"csrf_token": csrf_of(client)})
    statuses = [login(client, username="dave", password=f"wrong-{i}").status_code for i in range(6)]
    assert statuses[:5] == [401] * 5
    assert statuses[5] == 429
    # Even the right password waits out the window.
    limited = login(client, username="dave")
    assert limited.status_code == 429 and "Retry-After" in limited.headers


def test_sign_up_rotates_the_session_and_only_the_token_hash_is_stored(client):
    import hashlib

    from sqlalchemy import select

    from app.db.models import AuthSession
    from tests.app.helpers import run, services

    csrf = csrf_of(client)
    before = client.cookies.get(COOKIE_NAME)
    assert signup(client, username="erin", csrf=csrf).status_code == 200
    after = client.cookies.get(COOKIE_NAME)
    assert after and after != before
    assert "Log out" in client.get("/", headers={"accept": "text/html"}).text

    async def _sessions() -> list[AuthSession]:
        async with services(client).db.read() as session:
            return list((await session.execute(select(AuthSession))).scalars())

    stored = run(client, _sessions())
    hashes = {row.token_hash for row in stored}
    assert hashlib.sha256(after.encode()).hexdigest() in hashes
    assert after not in hashes and (before is None or before not in hashes)  # the raw token is never stored
    signed_in = [row for row in stored if row.token_hash == hashlib.sha256(after.encode()).hexdigest()]
    assert signed_in[0].user_id is not None
    if before is not None:
        # The guest's cookie does not give the new account's session (session fixation).
        assert all(row.user_id is None or row.token_hash != hashlib.sha256(before.encode()).hexdigest()
                   for row in stored)
        client.cookies.set(COOKIE_NAME, before)
        assert "Log out" not in client.get("/", headers={"accept": "text/html"}).text
