"""Hostile checks against real ``foryou serve`` processes on loopback: what reaches the log, and whose
address the server believes (X-Forwarded-For only from FORYOU_TRUSTED_PROXIES)."""

from __future__ import annotations

import re

import httpx

from tests.live import LiveServer

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
SECRET_PASSWORD = "hunter2-very-secret"


def failed_logins(server: LiveServer, count: int, forwarded_for: bool) -> list[int]:
    """Wrong passwords for fresh usernames, each from a "new" address when forwarded_for is set."""
    statuses = []
    with httpx.Client(base_url=server.url, timeout=20) as client:
        csrf = CSRF_META.search(client.get("/login", headers={"accept": "text/html"}).text).group(1)
        for i in range(count):
            headers = {"x-csrf-token": csrf, **({"x-forwarded-for": f"203.0.113.{i + 1}"} if forwarded_for else {})}
            response = client.post("/login", data={"username": f"victim{i}", "password": SECRET_PASSWORD},
                                   headers=headers)
            statuses.append(response.status_code)
    return statuses


def test_logs_proxies_and_hosts_on_real_servers(tmp_path):
    direct = LiveServer(tmp_path / "direct", env={"FORYOU_LOGIN_ATTEMPTS_PER_ADDRESS_PER_MINUTE": "4"})
    proxied = LiveServer(tmp_path / "proxied", env={"FORYOU_LOGIN_ATTEMPTS_PER_ADDRESS_PER_MINUTE": "4",
                                                    "FORYOU_TRUSTED_PROXIES": "127.0.0.1"})
    direct.launch()
    proxied.launch()
    try:
        direct.wait_ready()
        proxied.wait_ready()

        # Without trusted proxies a client rotating X-Forwarded-For is still one address: throttled.
        statuses = failed_logins(direct, 6, forwarded_for=True)
        assert statuses[:4] == [401] * 4 and statuses[4:] == [429, 429]
        # Behind a trusted proxy each forwarded address is its own client.
        assert failed_logins(proxied, 6, forwarded_for=True) == [401] * 6

        # The Host header is checked; unrouted answers carry the security headers.
        assert httpx.get(direct.url + "/", headers={"host": "evil.example"}).status_code == 400
        missing = httpx.request("PATCH", direct.url + "/no/such/thing", headers={"x-request-id": "probe-12345678"})
        assert missing.status_code in (404, 405)
        assert missing.headers["x-frame-options"] == "DENY" and "content-security-policy" in missing.headers
        assert missing.headers["x-request-id"] == "probe-12345678"
    finally:
        direct.stop()
        proxied.stop()

    # Structured JSON lines reached stderr (not replaced by a framework's plain format) ...
    records = direct.json_lines()
    access = [r for r in records if r.get("logger") == "foryou.access"]
    assert access, direct.lines[-20:]
    logins = [r for r in access if r["path"] == "/login" and r["method"] == "POST"]
    assert len(logins) == 6 and {r["status"] for r in logins} == {401, 429}
    for record in access:
        assert {"method", "path", "status", "ms", "request_id", "ts", "level"} <= set(record), record
        assert isinstance(record["ms"], int | float) and record["status"] >= 100
    # ... with the peer address, not the forged one, and no secret anywhere.
    assert {r["client"] for r in logins} == {"127.0.0.1"}
    assert {r["client"] for r in proxied.json_lines() if r.get("path") == "/login" and r.get("method") == "POST"} \
        == {f"203.0.113.{i + 1}" for i in range(6)}
    assert any(r.get("request_id") == "probe-12345678" and r["path"] == "/no/such/thing" for r in access)
    everything = "\n".join(direct.lines + proxied.lines)
    assert SECRET_PASSWORD not in everything and "live-test-secret" not in everything
    assert "foryou_session=" not in everything


def test_a_kill_during_an_upload_body_leaves_nothing_after_restart(tmp_path):
    import socket
    import time

    data_dir = tmp_path / "data"
    server = LiveServer(data_dir).start()
    try:
        with httpx.Client(base_url=server.url, timeout=20) as client:
            csrf = CSRF_META.search(client.get("/signup", headers={"accept": "text/html"}).text).group(1)
            client.post("/signup", data={"username": "uploader", "password": "long enough pw", "csrf_token": csrf})
            csrf = CSRF_META.search(client.get("/upload", headers={"accept": "text/html"}).text).group(1)
            cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        upload = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        upload.sendall((f"POST /api/uploads?caption=half HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n"
                        f"X-CSRF-Token: {csrf}\r\nContent-Type: video/mp4\r\nContent-Length: 5000000\r\n\r\n").encode()
                       + b"\x00" * 300_000)
        deadline = time.monotonic() + 20
        while not list((data_dir / "tmp").glob("*.upload")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert list((data_dir / "tmp").glob("*.upload")), "the upload never started"
        server.stop(kill=True)  # SIGKILL with the body half sent
        upload.close()
        assert list((data_dir / "tmp").glob("*.upload"))  # the partial file outlived its process...
        LiveServer(data_dir).start().stop()
        assert not list((data_dir / "tmp").glob("*.upload"))  # ...and the next start-up removed it at once
    finally:
        server.stop(kill=True)
