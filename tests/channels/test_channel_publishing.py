"""Every network's exact request, over real HTTP to the stand-ins: one table, one tester."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from channel_testkit import ACCOUNTS, ALT, GERMAN_TEXT, POST_NETWORK, STANDIN_NETWORK, make_post

from newsroom.channels import Publisher, publish_with_retries
from newsroom.posts import MediaItem

pytestmark = pytest.mark.anyio

KEY = "trikottag/2026-05-15/{channel}/3f9a"
IMAGE_URL = "https://www.darmstadt.de/bilder/trikottag.jpg"
LINK = "https://www.darmstadt.de/trikottag"


@dataclass(frozen=True)
class Case:
    id: str
    channel: str
    create_path: str  # the path of the request that makes the post ends with this
    images: int = 0  # images from files (with their approved hash)
    image_urls: tuple[str, ...] = ()  # images at public URLs
    text: str = GERMAN_TEXT
    link: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # subset of the create request's
    body: dict[str, Any] = field(default_factory=dict)  # subset of its body
    post: dict[str, Any] = field(default_factory=dict)  # subset of the stand-in's post record
    check: Callable[[dict[str, Any], list[dict[str, Any]]], None] | None = None
    remote_id: str = r".+"
    url: str = r"https://.+"


def _media_request(requests: list[dict[str, Any]], path: str) -> dict[str, Any]:
    return next(r for r in requests if r["path"].endswith(path))


def _mastodon_media(post: dict[str, Any], requests: list[dict[str, Any]]) -> None:
    upload = _media_request(requests, "/api/v2/media")
    assert upload["body"]["fields"]["description"] == ALT
    assert upload["body"]["files"]["file"]["content_type"] == "image/png"
    assert upload["headers"]["authorization"] == "Bearer ***"
    create = _media_request(requests, "/api/v1/statuses")
    assert create["body"]["media_ids"] == [post["media"][0]["id"]]


def _bluesky_facets(post: dict[str, Any], requests: list[dict[str, Any]]) -> None:
    record = _media_request(requests, "createRecord")["body"]["record"]
    assert record["facets"] == [
        {"index": {"byteStart": 21, "byteEnd": 31},
         "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "Trikottag"}]},
        {"index": {"byteStart": 32, "byteEnd": 54},
         "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.org/ä"}]},
    ]
    assert post["facet_texts"] == ["#Trikottag", "https://example.org/ä"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["createdAt"])


def _bluesky_image(post: dict[str, Any], requests: list[dict[str, Any]]) -> None:
    upload = _media_request(requests, "uploadBlob")
    assert upload["headers"]["content-type"] == "image/png"
    embed = _media_request(requests, "createRecord")["body"]["record"]["embed"]
    assert embed["$type"] == "app.bsky.embed.images"
    assert embed["images"][0]["alt"] == ALT
    assert embed["images"][0]["aspectRatio"] == {"width": 4, "height": 3}
    assert embed["images"][0]["image"]["ref"]["$link"].startswith("bafyrei")


def _linkedin_image(post: dict[str, Any], requests: list[dict[str, Any]]) -> None:
    init = _media_request(requests, "/rest/images")
    assert init["query"] == {"action": "initializeUpload"}
    assert init["body"] == {"initializeUploadRequest": {"owner": "urn:li:organization:2414183"}}
    put = next(r for r in requests if r["method"] == "PUT")
    assert put["body"]["content_type"] == "image/png"
    content = _media_request(requests, "/rest/posts")["body"]["content"]
    assert content["media"]["altText"] == ALT
    assert content["media"]["id"].startswith("urn:li:image:")


def _facebook_photo(post: dict[str, Any], requests: list[dict[str, Any]]) -> None:
    photo = _media_request(requests, "/photos")["body"]
    assert photo["fields"]["alt_text_custom"] == ALT
    assert photo["fields"]["message"] == GERMAN_TEXT
    assert photo["fields"]["access_token"] == "***"
    assert photo["files"]["source"]["content_type"] == "image/png"


def _instagram(post: dict[str, Any], requests: list[dict[str, Any]]) -> None:
    container = _media_request(requests, "/178414/media")["body"]
    assert container == {"image_url": IMAGE_URL, "caption": GERMAN_TEXT, "alt_text": ALT,
                         "access_token": "***"}
    publish = _media_request(requests, "/media_publish")["body"]
    assert publish["creation_id"] == post_container(requests)


def post_container(requests: list[dict[str, Any]]) -> str:
    status = [r for r in requests if r["method"] == "GET" and "fields" in r["query"]]
    return status[0]["path"].rsplit("/", 1)[-1]


def _threads_image(post: dict[str, Any], requests: list[dict[str, Any]]) -> None:
    container = _media_request(requests, "/256302/threads")["body"]
    assert container["media_type"] == "IMAGE"
    assert container["image_url"] == IMAGE_URL
    assert container["alt_text"] == ALT


def _telegram_photo(post: dict[str, Any], requests: list[dict[str, Any]]) -> None:
    send = _media_request(requests, "/sendPhoto")
    assert send["path"] == "/telegram/bot***/sendPhoto"  # the token never reaches the log
    assert send["body"]["fields"] == {"chat_id": "@darmstadt", "caption": GERMAN_TEXT}
    assert send["body"]["files"]["photo"]["content_type"] == "image/png"


BEARER = {"authorization": "Bearer ***"}
CASES = [
    Case("mastodon-text", "mastodon", "/mastodon/api/v1/statuses",
         headers={**BEARER, "idempotency-key": KEY.format(channel="mastodon")},
         body={"status": GERMAN_TEXT, "language": "de", "visibility": "public"},
         post={"text": GERMAN_TEXT, "visibility": "public", "language": "de",
               "idempotency_key": KEY.format(channel="mastodon")},
         remote_id=r"\d{18}", url=r"http://127\.0\.0\.1:\d+/mastodon/@darmstadt/\d{18}"),
    Case("mastodon-image", "mastodon", "/mastodon/api/v1/statuses", images=1,
         headers={"idempotency-key": KEY.format(channel="mastodon")},
         post={"media": [{"alt": ALT}]}, check=_mastodon_media, url=r"http://.+"),
    Case("bluesky-facets", "bluesky", "/bluesky/xrpc/com.atproto.repo.createRecord",
         headers=BEARER,
         body={"collection": "app.bsky.feed.post",
               "record": {"$type": "app.bsky.feed.post", "text": GERMAN_TEXT,
                          "langs": ["de"]}},
         check=_bluesky_facets, remote_id=r"at://did:plc:[a-z2-7]{24}/app\.bsky\.feed\.post/"
         r"[2-7a-j][2-7a-z]{12}", url=r"https://bsky\.app/profile/darmstadt\.standin\.test/post/.+"),
    Case("bluesky-image", "bluesky", "/bluesky/xrpc/com.atproto.repo.createRecord", images=1,
         post={"media": [{"alt": ALT, "aspectRatio": {"width": 4, "height": 3}}]},
         check=_bluesky_image),
    Case("linkedin-escaped", "linkedin", "/linkedin/rest/posts",
         text="Trikottag (mit Schulen) – Infos: info@darmstadt.de #Lilien_98 *jetzt*",
         headers={**BEARER, "linkedin-version": "202608", "x-restli-protocol-version": "2.0.0"},
         body={"author": "urn:li:organization:2414183",
               "commentary": r"Trikottag \(mit Schulen\) – Infos: info\@darmstadt.de "
                             r"{hashtag|\#|Lilien\_98} \*jetzt\*",
               "visibility": "PUBLIC", "lifecycleState": "PUBLISHED",
               "isReshareDisabledByAuthor": False,
               "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [],
                                "thirdPartyDistributionChannels": []}},
         post={"text": "Trikottag (mit Schulen) – Infos: info@darmstadt.de #Lilien_98 *jetzt*",
               "truncated": False},
         remote_id=r"urn:li:share:\d+",
         url=r"https://www\.linkedin\.com/feed/update/urn:li:share:\d+/"),
    Case("linkedin-image", "linkedin", "/linkedin/rest/posts", images=1,
         post={"media": [{"alt": ALT}]}, check=_linkedin_image),
    Case("facebook-link", "facebook", "/graph/v21.0/104598/feed", link=LINK,
         body={"message": GERMAN_TEXT, "link": LINK, "access_token": "***"},
         post={"text": GERMAN_TEXT, "link": LINK, "page": "104598"},
         remote_id=r"104598_\d+", url=r"https://www\.facebook\.com/104598_\d+"),
    Case("facebook-photo", "facebook", "/graph/v21.0/104598/photos", images=1,
         post={"media": [{"alt": ALT}], "text": GERMAN_TEXT}, check=_facebook_photo),
    Case("instagram-image", "instagram", "/graph/v21.0/178414/media_publish",
         image_urls=(IMAGE_URL,), body={"access_token": "***"},
         post={"text": GERMAN_TEXT, "media": [{"image_url": IMAGE_URL, "alt": ALT}]},
         check=_instagram, remote_id=r"\d+", url=r"https://www\.instagram\.com/p/.+/"),
    Case("threads-text", "threads", "/graph/v1.0/256302/threads_publish",
         post={"text": GERMAN_TEXT, "media_type": "TEXT", "media": []},
         url=r"https://www\.threads\.net/@darmstadt/post/.+"),
    Case("threads-image", "threads", "/graph/v1.0/256302/threads_publish",
         image_urls=(IMAGE_URL,), post={"media_type": "IMAGE"}, check=_threads_image),
    Case("telegram-text", "telegram", "/telegram/bot***/sendMessage", link=LINK,
         body={"chat_id": "@darmstadt", "text": GERMAN_TEXT,
               "link_preview_options": {"url": LINK, "prefer_large_media": True}},
         post={"text": GERMAN_TEXT, "chat_id": "@darmstadt"},
         remote_id=r"1", url=r"https://t\.me/darmstadt/1"),
    Case("telegram-photo", "telegram", "/telegram/bot***/sendPhoto", images=1,
         check=_telegram_photo),
    Case("website-cms", "website", "/cms/posts", link=LINK,
         headers={**BEARER, "idempotency-key": KEY.format(channel="website")},
         body={"id": "tag:www.darmstadt.de,2025:trikottag/2026-05-15/website",
               "title": "Trikottag an Darmstädter Schulen", "text": GERMAN_TEXT,
               "link": LINK, "language": "de", "published": "2026-05-15T08:00:00Z"},
         post={"text": GERMAN_TEXT},
         remote_id=r"tag:www\.darmstadt\.de,2025:trikottag/2026-05-15/website",
         url=r"https://www\.darmstadt\.de/aktuelles/1-trikottag-an-darmstaedter-schulen"),
]


def _subset(expected: Any, actual: Any, where: str = "") -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not an object"
        for key, value in expected.items():
            assert key in actual, f"{where}.{key} missing in {actual!r}"
            _subset(value, actual[key], f"{where}.{key}")
    elif isinstance(expected, list) and expected and isinstance(expected[0], dict):
        assert len(expected) == len(actual), f"{where}: {actual!r}"
        for n, (e, a) in enumerate(zip(expected, actual, strict=True)):
            _subset(e, a, f"{where}[{n}]")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_publish(case: Case, standins, make_publisher, image) -> None:
    publisher: Publisher = make_publisher(case.channel)
    media = tuple(image() for _ in range(case.images)) + tuple(
        MediaItem(source=url, alt=ALT) for url in case.image_urls)
    post = make_post(case.channel, text=case.text, media=media, link=case.link)

    result = await publish_with_retries(publisher, post, KEY.format(channel=case.channel))

    network = STANDIN_NETWORK[case.channel]
    requests = standins.requests(network)
    creating = [r for r in requests if r["path"].endswith(case.create_path)]
    assert len(creating) == 1, [r["path"] for r in requests]
    request = creating[0]
    assert request["method"] == "POST"
    assert request.get("status", 0) < 300
    _subset(case.headers, request["headers"], "headers")
    body = request["body"]
    if isinstance(body, dict) and "fields" in body:  # multipart
        body = body["fields"]
    _subset(case.body, body, "body")

    posts = standins.posts(POST_NETWORK[case.channel])
    assert len(posts) == 1
    _subset(case.post, posts[0], "post")
    if case.check:
        case.check(posts[0], requests)

    assert re.fullmatch(case.remote_id, result.remote_id), result.remote_id
    assert result.url and re.fullmatch(case.url, result.url), result.url
    assert result.attempts == 1 and result.status == "published"
    secret = ACCOUNTS[case.channel]["secret"].split(":")[-1]
    assert all(secret not in str(r) for r in requests), "a secret reached the request log"


async def test_every_network_has_a_case() -> None:
    from newsroom.channels import PUBLISHERS

    covered = {c.channel for c in CASES}
    assert covered | {"email", "manual"} == {t.value for t in PUBLISHERS}


@pytest.mark.parametrize("channel", ["mastodon", "bluesky", "linkedin", "facebook",
                                     "instagram", "threads", "telegram"])
async def test_check_accepts_the_credential(channel: str, standins, make_publisher) -> None:
    check = await make_publisher(channel).check()
    assert check.ok, check
    assert check.identity


@pytest.mark.parametrize(("channel", "message"), [
    ("mastodon", "The access token is invalid"),
    ("bluesky", "Invalid identifier or password"),
    ("linkedin", "Invalid access token"),
    ("facebook", "Invalid OAuth access token"),
    ("telegram", "Unauthorized"),
])
async def test_check_reports_a_wrong_credential(channel: str, message: str, standins,
                                                make_publisher) -> None:
    secret = "darmstadt.standin.test:wrong" if channel == "bluesky" else "1:wrong-token"
    check = await make_publisher(channel, secret=secret).check()
    assert not check.ok
    assert message in check.message
    assert "wrong" not in check.message
