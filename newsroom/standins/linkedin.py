"""LinkedIn stand-in: ``/rest/posts``, ``/rest/images?action=initializeUpload``, the upload
URL, ``/rest/organizations/{id}`` and the ``roleAssignee`` finder of
``/rest/organizationAcls``, with LinkedIn's header rules. A token's member is an
ADMINISTRATOR unless :attr:`StandinConfig.linkedin_token_roles` gives it a role that may
not post; then ``/rest/posts`` answers 403 ACCESS_DENIED.

The commentary is rendered the way LinkedIn reads *little text*: escapes resolved,
hashtag templates shown as ``#tag``, and the text cut at the first unescaped reserved
character, which is what LinkedIn does with it. The post record keeps that rendering
as ``text`` and says whether it was ``truncated``.

``GET`` and ``DELETE /rest/posts/{encoded URN}`` (the Posts API's "Get Posts by URN" and
"Delete Posts"): the URN must be URL-encoded in the path; a delete answers 204 No Content,
also for a post it deleted before ("Post deletions are idempotent"), 404 for a URN it never
made, and 403 to a member whose role may not post; a deleted post's GET answers 404. The
recorder keeps the deleted post with ``deleted_at``.
"""

from __future__ import annotations

import itertools
import math
import re
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from newsroom.standins._http import bearer, json_response, payload_of
from newsroom.standins.config import StandinConfig
from newsroom.standins.recorder import FaultRule, Recorder

NETWORK = "linkedin"
RESERVED = frozenset("\\|{}@[]()<>#*_~")
_HASHTAG = re.compile(r"\{hashtag\|\\#\|((?:\\.|[^}\\])+)\}")
_MENTION = re.compile(r"@\[((?:\\.|[^\]\\])*)\]\((urn:li:[^)]+)\)")
_VERSION = re.compile(r"^\d{6}(\.\d{2})?$")
_UNESCAPE = re.compile(r"\\(.)")


def render_little_text(commentary: str) -> tuple[str, bool]:
    """(what LinkedIn shows, whether it cut the text at an unescaped reserved character)."""
    out, i = [], 0
    while i < len(commentary):
        char = commentary[i]
        if char == "\\" and i + 1 < len(commentary):
            out.append(commentary[i + 1])
            i += 2
            continue
        if char == "{" and (match := _HASHTAG.match(commentary, i)):
            out.append("#" + _UNESCAPE.sub(r"\1", match.group(1)))
            i = match.end()
            continue
        if char == "@" and (match := _MENTION.match(commentary, i)):
            out.append(_UNESCAPE.sub(r"\1", match.group(1)))
            i = match.end()
            continue
        if char in RESERVED:
            return "".join(out), True
        out.append(char)
        i += 1
    return "".join(out), False


# The roles that may post for an organization (Organization Access Control by Role: "An
# administrator can post updates"; the content administrator is LinkedIn's role for
# posting without administering the page).
POSTING_ROLES = frozenset({"ADMINISTRATOR", "CONTENT_ADMINISTRATOR"})


def _served(version: str, today: time.struct_time | None = None) -> bool:
    """LinkedIn serves a monthly version from its month for a year ("supported and stable
    for a minimum of one year before sunset"; 202411 went on 17 November 2025): not one
    from the future, not one twelve months old."""
    today = today or time.gmtime()
    months_old = (today.tm_year * 12 + today.tm_mon) - (int(version[:4]) * 12 + int(version[4:6]))
    return 0 <= months_old < 12


def _error(status: int, message: str, code: str | None = None, **extra: Any) -> Response:
    body: dict[str, Any] = {"status": status, "message": message}
    if code:
        body["code"] = code
    body.update(extra)
    return json_response(body, status)


def fault_response(rule: FaultRule) -> Response:
    if rule.kind == "429":
        return json_response(
            {"status": 429, "message": "Resource level throttle APPLICATION DAY limit for "
             "calls to this resource is reached."}, 429,
            {"Retry-After": str(math.ceil(rule.retry_after))})
    if rule.kind == "401":
        return _error(401, "Invalid access token", "INVALID_ACCESS_TOKEN",
                      serviceErrorCode=65600)
    return _error(500, "Internal Server Error")


def build(recorder: Recorder, config: StandinConfig) -> Starlette:
    seq = itertools.count(7_200_000_000_000_000_001)
    images: dict[str, dict[str, Any]] = {}
    posts: dict[str, dict[str, Any]] = {}
    deleted: set[str] = set()  # URNs of posts taken down
    organizations_read: set[str] = set()  # the member's organizations, as asked for

    def reset() -> None:
        images.clear()
        posts.clear()
        deleted.clear()
        organizations_read.clear()

    recorder.on_reset(reset)

    def refused(request: Request, *, restli: bool = True) -> Response | None:
        if bearer(request) not in config.linkedin_tokens:
            return _error(401, "Invalid access token", "INVALID_ACCESS_TOKEN",
                          serviceErrorCode=65600)
        version = request.headers.get("linkedin-version")
        if not version:
            return _error(400, "A version must be present. Please specify a version by adding "
                          "the LinkedIn-Version header.", "VERSION_MISSING")
        if not _VERSION.match(version) or not _served(version):
            return _error(426, f"Requested version {version[:6]}01 is not active",
                          "NONEXISTENT_VERSION")
        if restli and request.headers.get("x-restli-protocol-version") != "2.0.0":
            return _error(400, "X-Restli-Protocol-Version 2.0.0 is required for this resource")
        return None

    def role(request: Request) -> str:
        return config.linkedin_token_roles.get(bearer(request) or "", "ADMINISTRATOR")

    async def create_post(request: Request) -> Response:
        if (problem := refused(request)) is not None:
            return problem
        if role(request) not in POSTING_ROLES:
            return _error(403, "Not enough permissions to access: "
                          "partnerApiPostsExternal.CREATE.20260801", "ACCESS_DENIED",
                          serviceErrorCode=100)
        body = (await payload_of(request)).json or {}
        for name in ("author", "commentary", "visibility", "distribution", "lifecycleState"):
            if name not in body:
                return _error(422, f"ERROR :: /{name} :: field is required but not found and "
                              "has no default value")
        if not re.match(r"^urn:li:(organization|person):\w+$", str(body["author"])):
            return _error(422, f"ERROR :: /author :: {body['author']} is not a valid urn")
        media = []
        content = body.get("content") or {}
        entries = ([content["media"]] if "media" in content
                   else (content.get("multiImage") or {}).get("images", []))
        for entry in entries:
            image = images.get(entry.get("id", ""))
            if image is None or not image["uploaded"]:
                return _error(422, f"ERROR :: /content/media/id :: {entry.get('id')} is not "
                              "an uploaded image")
            media.append({"id": entry["id"], "alt": entry.get("altText")})
        text, truncated = render_little_text(str(body["commentary"]))
        urn = f"urn:li:share:{next(seq)}"
        posts[urn] = body
        recorder.add_post(NETWORK, id=urn, url=f"https://www.linkedin.com/feed/update/{urn}/",
                          text=text, truncated=truncated, commentary=body["commentary"],
                          author=body["author"], media=media)
        return Response(status_code=201, headers={"x-restli-id": urn,
                                                  "x-linkedin-id": urn})

    async def post_by_urn(request: Request) -> Response:
        """``GET`` / ``DELETE /rest/posts/{encoded ugcPostUrn|shareUrn}``."""
        if (problem := refused(request)) is not None:
            return problem
        urn = request.path_params["urn"]
        raw = request.scope.get("raw_path", b"").decode("latin-1").split("?", 1)[0]
        if not raw.rstrip("/").rsplit("/", 1)[-1].lower().startswith("urn%3ali%3a"):
            return _error(400, f"Invalid key {urn!r}: a URN in the path must be URL-encoded "
                          "(urn%3Ali%3Ashare%3A…)", "INVALID_KEY")
        shown = urn in posts and urn not in deleted
        if request.method == "GET":
            if not shown:
                return _error(404, f"Not Found: {urn}", "NOT_FOUND")
            return json_response({**posts[urn], "id": urn})
        if role(request) not in POSTING_ROLES:
            return _error(403, "Not enough permissions to access: "
                          "partnerApiPostsExternal.DELETE.20260801", "ACCESS_DENIED",
                          serviceErrorCode=100)
        if urn in deleted:
            return Response(status_code=204)  # deletions are idempotent
        if not shown or recorder.delete_post(NETWORK, lambda p: p.get("id") == urn) is None:
            return _error(404, f"Not Found: {urn}", "NOT_FOUND")
        deleted.add(urn)
        return Response(status_code=204)

    async def initialize_upload(request: Request) -> Response:
        if (problem := refused(request)) is not None:
            return problem
        if request.query_params.get("action") != "initializeUpload":
            return _error(400, "Unsupported action")
        body = (await payload_of(request)).json or {}
        owner = ((body.get("initializeUploadRequest") or {}).get("owner"))
        if not owner:
            return _error(422, "ERROR :: /initializeUploadRequest/owner :: field is required")
        image_id = f"D4E10AQ{next(seq)}"
        urn = f"urn:li:image:{image_id}"
        images[urn] = {"owner": owner, "uploaded": False}
        upload_url = str(request.base_url).rstrip("/") + f"/linkedin/dms-uploads/{image_id}"
        return json_response({"value": {
            "uploadUrlExpiresAt": int(time.time() * 1000) + 86_400_000,
            "uploadUrl": upload_url, "image": urn}})

    async def upload(request: Request) -> Response:
        urn = f"urn:li:image:{request.path_params['image_id']}"
        if urn not in images:
            return _error(404, "Upload URL not found")
        data = await request.body()
        if not data:
            return _error(400, "Empty upload")
        images[urn].update(uploaded=True, size=len(data))
        return Response(status_code=201)

    async def organization(request: Request) -> Response:
        if (problem := refused(request, restli=False)) is not None:
            return problem
        org_id = request.path_params["org_id"]
        organizations_read.add(org_id)
        return json_response({"id": int(org_id) if org_id.isdigit() else org_id,
                              "localizedName": "Wissenschaftsstadt Darmstadt",
                              "vanityName": "wissenschaftsstadt-darmstadt"})

    async def organization_acls(request: Request) -> Response:
        """The roleAssignee finder: the authenticated member's roles in organizations.
        The stand-in's member has its role in every organization a post named."""
        if (problem := refused(request)) is not None:
            return problem
        if request.query_params.get("q") != "roleAssignee":
            return _error(400, "Unsupported finder")
        state = request.query_params.get("state")
        organizations = sorted({str(p["author"]) for p in posts.values()}
                               | {f"urn:li:organization:{o}" for o in organizations_read})
        elements = [{"organization": urn, "role": role(request), "state": "APPROVED",
                     "roleAssignee": "urn:li:person:standinMember"}
                    for urn in organizations if state in (None, "APPROVED")]
        return json_response({"paging": {"count": 10, "start": 0, "links": []},
                              "elements": elements})

    return Starlette(routes=[
        Route("/rest/organizationAcls", organization_acls),
        Route("/rest/posts", create_post, methods=["POST"]),
        Route("/rest/posts/{urn}", post_by_urn, methods=["GET", "DELETE"]),
        Route("/rest/images", initialize_upload, methods=["POST"]),
        Route("/dms-uploads/{image_id}", upload, methods=["PUT"]),
        Route("/rest/organizations/{org_id}", organization),
    ])

