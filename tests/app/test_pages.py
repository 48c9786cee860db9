from tests.app.helpers import add_video


def test_empty_catalogue_shows_a_friendly_empty_state(client):
    page = client.get("/", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "No videos yet" in page.text and "/upload" in page.text and "foryou seed" in page.text


def test_pages_carry_security_headers(client):
    page = client.get("/", headers={"accept": "text/html"})
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"


def test_missing_page_looks_like_the_app(client):
    page = client.get("/no/such/page", headers={"accept": "text/html"})
    assert page.status_code == 404
    assert "Back to the feed" in page.text and "For<span>You</span>" in page.text


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["ready"] is True
    assert ready["checks"]["database"]["ok"] is True
    assert ready["checks"]["lancedb"]["ok"] is True


def test_readiness_says_clip_is_missing_and_what_understands_videos_instead(client):
    models = client.get("/readyz").json()["checks"]["models"]
    assert models["whisper"]["state"] in {"available", "loaded"} and models["whisper"]["random"] is False
    assert models["clip"]["state"] == "missing"
    assert "no CLIP weights" in models["clip"]["detail"] and "open_clip_model.safetensors" in models["clip"]["detail"]
    assert models["sentence"]["state"] in {"available", "loaded"}
    assert models["text_embedding"]["state"] == "fallback"
    assert models["text_embedding"]["model_id"] == "text:all-MiniLM-L6-v2"


def test_catalogue_with_a_ready_video_has_no_empty_state(client):
    add_video(client)
    assert "No videos yet" not in client.get("/", headers={"accept": "text/html"}).text


def test_while_the_first_videos_process_the_feed_says_so_and_refreshes(client):
    add_video(client, state="processing")
    page = client.get("/", headers={"accept": "text/html"})
    assert "Getting the videos ready" in page.text and "1 video is being processed" in page.text
    assert '<meta http-equiv="refresh" content="5">' in page.text
