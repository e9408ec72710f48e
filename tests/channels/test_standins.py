"""The stand-in server itself: recording, faults, idempotency, the admin page."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest

from newsroom.standins import config as standin
from newsroom.timeutil import BERLIN

MASTODON = {"Authorization": f"Bearer {standin.MASTODON_TOKEN}"}


@pytest.fixture
def http(standins):
    with httpx.Client(base_url=standins.base_url, timeout=5) as client:
        yield client


@pytest.mark.parametrize(("reset", "error"), [(False, httpx.RemoteProtocolError),
                                              (True, httpx.ReadError)])
def test_drop_after_receive_closes_without_an_answer(reset, error, standins, http) -> None:
    standins.set_faults([{"network": "mastodon", "path_contains": "statuses",
                          "kind": "drop_after_receive", "reset": reset}])
    with pytest.raises(error):
        http.post("/mastodon/api/v1/statuses", json={"status": "Hallo"}, headers=MASTODON)
    assert [p["text"] for p in standins.posts("mastodon")] == ["Hallo"]  # it was made
    [request] = standins.requests("mastodon")
    assert request["dropped"] and request["fault"] == "drop_after_receive"
    assert standins.faults() == []  # used up
    assert http.get("/mastodon/api/v2/instance").status_code == 200  # and the server lives


def test_mastodon_honours_the_idempotency_key(standins, http) -> None:
    headers = {**MASTODON, "Idempotency-Key": "abc"}
    first = http.post("/mastodon/api/v1/statuses", data={"status": "Einmal"}, headers=headers)
    again = http.post("/mastodon/api/v1/statuses", data={"status": "Einmal"}, headers=headers)
    other = http.post("/mastodon/api/v1/statuses", data={"status": "Einmal"},
                      headers={**MASTODON, "Idempotency-Key": "def"})
    assert first.json()["id"] == again.json()["id"] != other.json()["id"]
    assert len(standins.posts("mastodon")) == 2


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "body"), [
    ("POST", "/mastodon/api/v1/statuses", {"json": {"status": "x"}}, 401,
     {"error": "The access token is invalid"}),
    ("POST", "/bluesky/xrpc/com.atproto.server.createSession",
     {"json": {"identifier": standin.BLUESKY_HANDLE, "password": "falsch"}}, 401,
     {"error": "AuthenticationRequired", "message": "Invalid identifier or password"}),
    ("POST", "/bluesky/xrpc/com.atproto.repo.createRecord",
     {"json": {}, "headers": {"Authorization": "Bearer nope"}}, 400,
     {"error": "InvalidToken", "message": "Token could not be verified"}),
    ("POST", "/linkedin/rest/posts",
     {"json": {}, "headers": {"Authorization": f"Bearer {standin.LINKEDIN_TOKEN}"}}, 400,
     {"status": 400, "code": "VERSION_MISSING"}),
    ("POST", "/linkedin/rest/posts",
     {"json": {}, "headers": {"Authorization": f"Bearer {standin.LINKEDIN_TOKEN}",
                              "LinkedIn-Version": "209912"}}, 426,
     {"status": 426, "code": "NONEXISTENT_VERSION"}),
    ("POST", "/linkedin/rest/posts",  # sunset: LinkedIn serves a version for a year
     {"json": {}, "headers": {"Authorization": f"Bearer {standin.LINKEDIN_TOKEN}",
                              "LinkedIn-Version": "202411"}}, 426,
     {"status": 426, "code": "NONEXISTENT_VERSION",
      "message": "Requested version 20241101 is not active"}),
    ("POST", "/graph/v21.0/1/feed", {"data": {"message": "x", "access_token": "falsch"}}, 400,
     {"error": {"code": 190, "type": "OAuthException"}}),
    ("POST", "/telegram/bot1:falsch/sendMessage", {"json": {"chat_id": 1, "text": "x"}}, 401,
     {"ok": False, "error_code": 401, "description": "Unauthorized"}),
    ("POST", "/cms/posts", {"json": {}}, 401, {"detail": "Invalid token"}),
])
def test_refusals_look_like_the_networks(method, path, kwargs, status, body, standins,
                                         http) -> None:
    response = http.request(method, path, **kwargs)
    assert response.status_code == status
    got = response.json()
    for key, value in body.items():
        if isinstance(value, dict):
            assert value.items() <= got[key].items()
        else:
            assert got[key] == value


def test_bluesky_refuses_non_tid_keys_and_existing_ones(standins, http) -> None:
    session = http.post("/bluesky/xrpc/com.atproto.server.createSession", json={
        "identifier": standin.BLUESKY_HANDLE, "password": standin.BLUESKY_APP_PASSWORD}).json()
    headers = {"Authorization": f"Bearer {session['accessJwt']}"}
    record = {"$type": "app.bsky.feed.post", "text": "Hallo", "createdAt": "2026-05-15T08:00:00Z"}

    def create(rkey: str) -> httpx.Response:
        return http.post("/bluesky/xrpc/com.atproto.repo.createRecord", headers=headers, json={
            "repo": session["did"], "collection": "app.bsky.feed.post", "rkey": rkey,
            "record": record})

    assert create("mein-beitrag").json() == {"error": "InvalidRequest",
                                             "message": "Invalid TID: mein-beitrag"}
    assert create("3lo3tptykpnor").status_code == 200
    again = create("3lo3tptykpnor")
    assert again.status_code == 500 and again.json()["error"] == "InternalServerError"


def test_the_log_keeps_no_secret(standins, http) -> None:
    http.post(f"/telegram/bot{standin.TELEGRAM_BOT_TOKEN}/sendMessage",
              json={"chat_id": "@d", "text": "x"})
    http.post("/graph/1/feed", data={"message": "x", "access_token": standin.GRAPH_TOKEN})
    http.post("/bluesky/xrpc/com.atproto.server.createSession", json={
        "identifier": standin.BLUESKY_HANDLE, "password": standin.BLUESKY_APP_PASSWORD})
    http.get("/mastodon/api/v1/accounts/verify_credentials", headers=MASTODON)
    log = str(standins.requests())
    for secret in (standin.TELEGRAM_BOT_TOKEN.split(":")[1], standin.GRAPH_TOKEN,
                   standin.BLUESKY_APP_PASSWORD, standin.MASTODON_TOKEN):
        assert secret not in log
    assert "/telegram/bot***/sendMessage" in log and "'authorization': 'Bearer ***'" in log
    assert "accessJwt" not in str(standins.posts())


def test_fault_rules_are_validated_and_counted(standins, http) -> None:
    bad = http.post("/_standin/faults", json=[{"kind": "teapot"}])
    assert bad.status_code == 422
    standins.set_faults([{"network": "cms", "kind": "500", "times": 2}])
    assert [http.post("/cms/posts").status_code for _ in range(3)] == [500, 500, 401]
    assert [r.get("fault") for r in standins.requests("cms")] == ["500", "500", None]


def test_the_admin_page_lists_posts_per_network(standins, http) -> None:
    http.post("/mastodon/api/v1/statuses", json={"status": "<b>Grüße</b> aus Darmstadt"},
              headers=MASTODON)
    http.post(f"/telegram/bot{standin.TELEGRAM_BOT_TOKEN}/sendMessage",
              json={"chat_id": "@darmstadt", "text": "Hallo Telegram"})
    page = http.get("/")
    assert page.headers["content-type"].startswith("text/html")
    assert "<h2>mastodon (1)</h2>" in page.text and "<h2>telegram (1)</h2>" in page.text
    assert "&lt;b&gt;Grüße&lt;/b&gt; aus Darmstadt" in page.text
    # Each post links to the stand-ins' page of it (the network's URL does not exist here).
    assert 'href="/_standin/post?url=https%3A%2F%2Ft.me%2Fdarmstadt%2F1"' in page.text
    post_page = http.get("/_standin/post", params={"url": "https://t.me/darmstadt/1"})
    assert post_page.status_code == 200 and "Hallo Telegram" in post_page.text
    assert http.get("/_standin/post", params={"url": "https://t.me/darmstadt/2"}
                    ).status_code == 404
    # Received times in Darmstadt time, to the second, with the zone (the recorder keeps UTC).
    for post in standins.posts():
        received = datetime.fromisoformat(post["created_at"]["wall"]).astimezone(BERLIN)
        shown = f"{received:%Y-%m-%d %H:%M:%S} ({received.tzname()})"
        assert f"<td>{shown}</td>" in page.text


def test_reset_forgets_everything(standins, http) -> None:
    http.post("/mastodon/api/v1/statuses", json={"status": "x"}, headers=MASTODON)
    standins.set_faults([{"kind": "500"}])
    standins.reset()
    assert standins.posts() == standins.requests() == standins.faults() == []
