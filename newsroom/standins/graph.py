"""Meta Graph stand-in for Facebook Pages, Instagram and Threads.

Paths as on graph.facebook.com / graph.threads.net, with or without the version segment:
``/{page}/feed``, ``/{page}/photos``, ``/{ig-user}/media``, ``/{ig-user}/media_publish``,
``/{threads-user}/threads``, ``/{threads-user}/threads_publish``, ``GET /{id}?fields=``,
``GET /debug_token``, ``GET /{ig-user}/content_publishing_limit`` and ``GET
/{threads-user}/threads_publishing_limit``. A token has permissions (all unless
:attr:`StandinConfig.graph_token_permissions` says less); an edge needing one it lacks is
refused with Meta's code 200 (Pages) or 10.
The access token may come as ``access_token`` (form or query) or as a Bearer header.
Errors have Meta's shape ``{"error": {"message", "type", "code", "error_subcode",
"fbtrace_id"}}``; throttling is HTTP 400 with code 4, as Meta does it.

``DELETE /{id}`` takes a post down: a Page post (``pages_manage_posts``, answers
``{"success": true}``), Instagram media (``instagram_manage_contents``) or Threads media
(``threads_delete``, at most :attr:`StandinConfig.threads_deletes_per_day` a profile in 24
hours), both answering ``{"success": true, "deleted_id"}``. What is not (or no longer)
there answers Graph's 100/33 "Object with ID … does not exist, cannot be loaded due to
missing permissions, or does not support this operation", and so does its ``GET``; a
child of an Instagram carousel answers -1/2207073 "Media Type Not Supported" (only whole
albums are deleted). The recorder keeps the deleted post with ``deleted_at``.
Meta documents no error for Threads' exhausted delete limit; the stand-in answers it with
code 613 (a custom rate limit) and reports the usage on ``threads_publishing_limit``
(``delete_quota_usage``, ``delete_config``).
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from newsroom.standins._http import Payload, bearer, json_response, payload_of
from newsroom.standins.config import StandinConfig
from newsroom.standins.recorder import FaultRule, Recorder

NETWORK = "graph"
_VERSION = re.compile(r"^v\d+\.\d+$")


def _error(message: str, code: int, *, status: int = 400, kind: str = "OAuthException",
           subcode: int | None = None, transient: bool | None = None,
           user_msg: str | None = None) -> Response:
    error: dict[str, Any] = {"message": message, "type": kind, "code": code,
                             "fbtrace_id": secrets.token_urlsafe(9)}
    if subcode is not None:
        error["error_subcode"] = subcode
    if user_msg is not None:
        error["error_user_msg"] = user_msg
    if transient is not None:
        error["is_transient"] = transient
    headers = {}
    if code == 190:
        headers["WWW-Authenticate"] = f'OAuth "Facebook Platform" "invalid_token" "{message}"'
    return json_response({"error": error}, status, headers)


def fault_response(rule: FaultRule) -> Response:
    if rule.kind == "429":
        return _error("(#4) Application request limit reached", 4, transient=True)
    if rule.kind == "401":
        return _error("Error validating access token: Session has expired.", 190, subcode=463)
    return _error("An unexpected error has occurred. Please retry your request later.", 2,
                  status=500, transient=True)


# What a token may do unless StandinConfig.graph_token_permissions says less, and the
# permission each edge needs (Pages: /feed, /photos; Instagram's and Threads' container,
# publish and publishing-limit edges).
ALL_PERMISSIONS = ("pages_show_list", "pages_read_engagement", "pages_manage_posts",
                   "instagram_basic", "instagram_content_publish",
                   "instagram_manage_contents", "threads_basic", "threads_content_publish",
                   "threads_delete")
PERMISSION_NEEDED = {
    ("POST", "feed"): "pages_manage_posts", ("POST", "photos"): "pages_manage_posts",
    ("POST", "media"): "instagram_content_publish",
    ("POST", "media_publish"): "instagram_content_publish",
    ("GET", "content_publishing_limit"): "instagram_content_publish",
    ("POST", "threads"): "threads_content_publish",
    ("POST", "threads_publish"): "threads_content_publish",
    ("GET", "threads_publishing_limit"): "threads_content_publish",
}
LIMITS = {"content_publishing_limit": "instagram", "threads_publishing_limit": "threads"}
# What DELETE /{id} takes down: object kind -> (the recorder's network, the permission).
DELETABLE = {"facebook_post": ("facebook", "pages_manage_posts"),
             "instagram_media": ("instagram", "instagram_manage_contents"),
             "threads_media": ("threads", "threads_delete")}
DAY = 86_400


def _bad(message: str, subcode: int | None = None) -> Response:
    return _error(f"(#100) {message}", 100, subcode=subcode)


def _no_such_object(method: str, object_id: str) -> Response:
    """Graph's answer to an id it cannot find (or may not show, or that does not support
    the method)."""
    return _error(f"Unsupported {method} request. Object with ID '{object_id}' does not "
                  "exist, cannot be loaded due to missing permissions, or does not support "
                  "this operation. Please read the Graph API documentation at "
                  "https://developers.facebook.com/docs/graph-api", 100, subcode=33,
                  kind="GraphMethodException")


def build(recorder: Recorder, config: StandinConfig) -> Starlette:
    ids = itertools.count(17_841_400_000_000_001)
    objects: dict[str, dict[str, Any]] = {}

    def reset() -> None:
        objects.clear()

    recorder.on_reset(reset)

    def token_of(request: Request, payload: Payload) -> str | None:
        return (payload.get("access_token") or request.query_params.get("access_token")
                or bearer(request))

    def new(kind: str, **fields: Any) -> str:
        object_id = str(next(ids))
        objects[object_id] = {"kind": kind, "id": object_id, **fields}
        return object_id

    def is_url(value: Any) -> bool:
        return isinstance(value, str) and urlsplit(value).scheme in ("http", "https")

    async def handle(request: Request) -> Response:
        segments = [s for s in request.path_params["path"].split("/") if s]
        if segments and _VERSION.match(segments[0]):
            segments = segments[1:]
        payload = await payload_of(request)
        token = token_of(request, payload)
        if token not in config.graph_tokens:
            return _error("Invalid OAuth access token - Cannot parse access token", 190)
        if request.method == "GET" and segments == ["debug_token"]:
            return debug_token(request.query_params.get("input_token", ""))
        if request.method == "GET" and len(segments) == 1:
            return read(segments[0], request.query_params.get("fields", ""))
        if request.method == "DELETE" and len(segments) == 1:
            return delete(token, segments[0])
        if len(segments) == 2 and (request.method, segments[1]) in PERMISSION_NEEDED:
            if (problem := lacks(token, PERMISSION_NEEDED[request.method, segments[1]])):
                return problem
        if request.method == "GET" and len(segments) == 2 and segments[1] in LIMITS:
            return publishing_limit(segments[0], LIMITS[segments[1]],
                                    request.query_params.get("fields", ""))
        if request.method == "POST" and len(segments) == 2:
            node, edge = segments
            handler = EDGES.get(edge)
            if handler is not None:
                return handler(request, node, payload)
        return _bad(f"Unsupported {request.method.lower()} request.", 33)

    def permissions(token: str) -> tuple[str, ...]:
        return config.graph_token_permissions.get(token, ALL_PERMISSIONS)

    def lacks(token: str, permission: str) -> Response | None:
        """Meta's answer to a token without the permission an edge needs: (#200) for a
        Page, (#10) for Instagram and Threads."""
        if permission in permissions(token):
            return None
        if permission == "pages_manage_posts":
            return _error("(#200) The user hasn't authorized the application to perform this "
                          "action", 200, kind="OAuthException")
        return _error("(#10) Application does not have permission for this action", 10)

    def debug_token(input_token: str) -> Response:
        """GET /debug_token: the token's metadata (its scopes; granted for every Page, so
        no target_ids)."""
        if input_token not in config.graph_tokens:
            return json_response({"data": {"is_valid": False, "error": {
                "code": 190, "message": "Invalid OAuth access token.", "subcode": 0},
                "scopes": []}})
        granted = permissions(input_token)
        return json_response({"data": {
            "app_id": "1234567890", "type": "PAGE", "application": "Newsroom",
            "data_access_expires_at": int(time.time()) + 90 * 86_400, "expires_at": 0,
            "is_valid": True, "issued_at": int(time.time()) - 3600, "scopes": list(granted),
            "granular_scopes": [{"scope": p} for p in granted],
            "user_id": "10000000000001"}})

    def publishing_limit(node: str, network: str, fields: str) -> Response:
        """``content_publishing_limit`` (Instagram, 50 a day as IG User Media Publish
        says) and ``threads_publishing_limit`` (250, and Threads' deletes): usage over the
        last 24 hours, the ``fields`` asked for (without: posts)."""
        since = time.time() - DAY
        used = sum(1 for o in objects.values() if o["kind"] == f"{network}_media"
                   and o.get("owner") == node and o.get("at", 0) >= since)
        total = 50 if network == "instagram" else 250
        usage: dict[str, Any] = {"quota_usage": used, "config": {
            "quota_total": total, "quota_duration": DAY}}
        if network == "threads":
            usage["delete_quota_usage"] = deletes_of_the_day(node)
            usage["delete_config"] = {"quota_total": config.threads_deletes_per_day,
                                      "quota_duration": DAY}
        wanted = {f.strip() for f in fields.split(",") if f.strip()} or {"quota_usage", "config"}
        usage = {k: v for k, v in usage.items() if k in wanted}
        return json_response({"data": [usage]})

    def deletes_of_the_day(node: str) -> int:
        since = time.time() - DAY
        return sum(1 for o in objects.values() if o["kind"] == "threads_media"
                   and o.get("owner") == node and o.get("deleted_at", 0) >= since)

    def delete(token: str, object_id: str) -> Response:
        """``DELETE /{id}``: a Page post, Instagram or Threads media, taken down once;
        then (and for anything else) Graph's "does not exist"."""
        item = objects.get(object_id)
        if item is not None and item["kind"] == "instagram_child" and "deleted_at" not in item:
            return _error("Fatal", -1, subcode=2207073, transient=False,
                          user_msg="The media type is not supported for this endpoint")
        if item is None or item["kind"] not in DELETABLE or "deleted_at" in item:
            return _no_such_object("delete", object_id)
        network, permission = DELETABLE[item["kind"]]
        if (problem := lacks(token, permission)):
            return problem
        if network == "threads" and (
                deletes_of_the_day(item["owner"]) >= config.threads_deletes_per_day):
            return _error("(#613) Calls to this api have exceeded the rate limit.", 613,
                          user_msg=f"This profile deleted {config.threads_deletes_per_day} "
                          "posts through the API in the last 24 hours.")
        if recorder.delete_post(network, lambda post: post.get("id") == object_id) is None:
            return _no_such_object("delete", object_id)
        now = time.time()
        item["deleted_at"] = now
        for part in (item.get("photo"), *item.get("children", ())):
            if part in objects:
                objects[part]["deleted_at"] = now
        if network == "facebook":
            return json_response({"success": True})
        return json_response({"success": True, "deleted_id": object_id})

    def read(object_id: str, fields: str) -> Response:
        item = objects.get(object_id)
        if item is not None and "deleted_at" in item:
            return _no_such_object("get", object_id)
        if item is None:
            if object_id.isdigit():  # a page, Instagram or Threads user
                return json_response({"id": object_id, "name": "Wissenschaftsstadt Darmstadt",
                                      "username": "darmstadt"})
            return _bad(f"Unsupported get request. Object with ID '{object_id}' does not "
                        "exist, cannot be loaded due to missing permissions, or does not "
                        "support this operation", 33)
        result: dict[str, Any] = {"id": object_id}
        if item["kind"] in ("ig_container", "threads_container"):
            item["polls"] = item.get("polls", 0) + 1
            state = ("PUBLISHED" if item["published_as"] else
                     "FINISHED" if item["polls"] > config.graph_container_polls else
                     "IN_PROGRESS")
            result["status_code" if item["kind"] == "ig_container" else "status"] = state
        if "permalink" in item:
            result["permalink"] = item["permalink"]
        if item["kind"] == "facebook_post":
            result.update(message=item["text"], permalink_url=item["url"])
        if item["kind"] == "instagram_media" and item.get("children"):
            result["children"] = {"data": [{"id": c} for c in item["children"]]}
        wanted = {f.strip() for f in fields.split(",") if f.strip()}
        return json_response({k: v for k, v in result.items() if k == "id" or k in wanted
                              or not wanted})

    def feed(request: Request, node: str, payload: Payload) -> Response:
        message, link = payload.get("message"), payload.get("link")
        attached = []
        for key in sorted(k for k in payload.fields if k.startswith("attached_media[")):
            try:
                fbid = str(json.loads(payload.get(key))["media_fbid"])
            except (ValueError, KeyError, TypeError):
                return _bad(f"Param {key} must be a JSON object with media_fbid")
            photo = objects.get(fbid)
            if photo is None or photo["kind"] != "photo" or photo["published"]:
                return _bad(f"Param {key} refers to an unknown or published photo", 2069019)
            attached.append(photo)
        if not message and not link and not attached:
            return _bad("Requires one of the params: message, link, attached_media")
        post_id = page_post(node, message or "")
        recorder.add_post("facebook", id=post_id, url=f"https://www.facebook.com/{post_id}",
                          page=node, text=message or "", link=link,
                          media=[{"id": p["id"], "alt": p["alt"]} for p in attached])
        return json_response({"id": post_id})

    def page_post(node: str, text: str, photo: str | None = None) -> str:
        """A Page post's id (``{page-id}_{post-id}``), readable until it is deleted."""
        post_id = f"{node}_{next(ids)}"
        objects[post_id] = {"kind": "facebook_post", "id": post_id, "page": node,
                            "text": text, "url": f"https://www.facebook.com/{post_id}",
                            "photo": photo}
        return post_id

    def photos(request: Request, node: str, payload: Payload) -> Response:
        upload, url = payload.files.get("source"), payload.get("url")
        if upload is None and not is_url(url):
            return _bad("Requires a photo: an upload named source or a url", 324)
        published = (payload.get("published") or "true").lower() != "false"
        photo_id = new("photo", page=node, alt=payload.get("alt_text_custom"),
                       published=published, size=len(upload.data) if upload else None)
        if not published:
            return json_response({"id": photo_id})
        post_id = page_post(node, payload.get("message") or "", photo=photo_id)
        recorder.add_post("facebook", id=post_id, url=f"https://www.facebook.com/{post_id}",
                          page=node, text=payload.get("message") or "", link=None,
                          media=[{"id": photo_id, "alt": payload.get("alt_text_custom")}])
        return json_response({"id": photo_id, "post_id": post_id})

    def container(kind: str, node: str, payload: Payload, text_field: str,
                  limit: int) -> Response:
        media_type = (payload.get("media_type") or ("IMAGE" if kind == "ig_container"
                                                    else "TEXT")).upper()
        text = payload.get(text_field) or ""
        if len(text) > limit:
            return _bad(f"The {text_field} is too long (maximum {limit} characters)", 2207010)
        children: list[str] = []
        if media_type == "CAROUSEL":
            children = [c for c in (payload.get("children") or "").split(",") if c]
            if not 2 <= len(children) <= 20 or any(c not in objects for c in children):
                return _bad("Param children must list 2 or more created carousel items")
        elif media_type == "IMAGE":
            if not is_url(payload.get("image_url")):
                return _bad("Param image_url is required and must be a public URL", 2207052)
        elif media_type == "TEXT" and kind == "threads_container":
            if not text:
                return _bad("Param text is required for TEXT posts")
        else:
            return _bad(f"Param media_type {media_type} is not supported here")
        container_id = new(kind, owner=node, media_type=media_type, text=text,
                           image_url=payload.get("image_url"), alt=payload.get("alt_text"),
                           carousel_item=payload.get("is_carousel_item") == "true",
                           children=children, published_as=None)
        return json_response({"id": container_id})

    def publish(kind: str, network: str, node: str, payload: Payload) -> Response:
        creation_id = payload.get("creation_id") or ""
        item = objects.get(creation_id)
        if item is None or item["kind"] != kind or item["owner"] != node:
            return _bad("Param creation_id must be a media container of this user", 2207027)
        if item["published_as"]:
            return _bad("The media has already been published", 2207028)
        if item.get("polls", 0) < config.graph_container_polls:
            return _error("Media ID is not available", 9007, subcode=2207027)
        if network == "instagram" and over_publishing_limit(node):
            return _error("Application request limit reached", 9, subcode=2207042,
                          user_msg="You reached maximum number of posts that is allowed to "
                          "be published by Content Publishing API.")
        media = ([objects[c] for c in item["children"]] if item["children"] else
                 [item] if item["image_url"] else [])
        media_id = new(f"{network}_media")
        code = secrets.token_urlsafe(8)
        permalink = (f"https://www.instagram.com/p/{code}/" if network == "instagram"
                     else f"https://www.threads.net/@darmstadt/post/{code}")
        objects[media_id].update(permalink=permalink, owner=node, at=time.time())
        if network == "instagram" and item["children"]:  # the album's media, one each
            objects[media_id]["children"] = [
                new("instagram_child", owner=node, parent=media_id) for _ in item["children"]]
        item["published_as"] = media_id
        recorder.add_post(network, id=media_id, url=permalink, owner=node, text=item["text"],
                          media_type=item["media_type"],
                          media=[{"image_url": m["image_url"], "alt": m["alt"]} for m in media])
        return json_response({"id": media_id})

    def over_publishing_limit(node: str) -> bool:
        limit = config.graph_instagram_publish_limit
        if limit is None:
            return False
        since = time.time() - 86_400
        published = [o for o in objects.values() if o["kind"] == "instagram_media"
                     and o.get("owner") == node and o.get("at", 0) >= since]
        return len(published) >= limit

    EDGES = {
        "feed": feed,
        "photos": photos,
        "media": lambda r, n, p: container("ig_container", n, p, "caption", 2200),
        "media_publish": lambda r, n, p: publish("ig_container", "instagram", n, p),
        "threads": lambda r, n, p: container("threads_container", n, p, "text", 500),
        "threads_publish": lambda r, n, p: publish("threads_container", "threads", n, p),
    }

    return Starlette(routes=[Route("/{path:path}", handle,
                                   methods=["GET", "POST", "DELETE"])])
