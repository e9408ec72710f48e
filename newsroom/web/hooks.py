"""``POST /hooks/alert``: alerts for the communications office, from Prefect.

A Prefect automation (created with the deployments, see ``newsroom/orchestration/stack.py``) sends a
notification through a "Custom Webhook" block to this endpoint when a Newsroom flow run
fails or crashes (a publication left "unknown" fails its campaign run too). Newsroom
passes it on through apprise to everyone tagged ``newsroom-alerts`` (the office).

The endpoint needs ``Authorization: Bearer <hook token>``; the token is derived from
``NEWSROOM_SECRET_KEY`` (:func:`hook_token`) and stored by Prefect in the block's
encrypted secrets. JSON body: ``{"subject": str, "body": str}``.
"""

from __future__ import annotations

import hmac
import logging
from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from newsroom.notify import ALERT_TAG
from newsroom.signing import Signer
from newsroom.web.pages import WebContext, get_context

logger = logging.getLogger("newsroom.web.hooks")

router = APIRouter(prefix="/hooks")
Context = Annotated[WebContext, Depends(get_context)]
_MAX_BODY = 32_768


def hook_token(secret_key: str) -> str:
    """The bearer token of the alert hook, derived from the server secret."""
    return Signer(secret_key).alert_hook_token


@router.post("/alert")
async def alert(request: Request, context: Context) -> JSONResponse:
    expected = "Bearer " + context.signer.alert_hook_token
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode()):
        return JSONResponse({"error": "unauthorized"}, status_code=401)
    raw = await request.body()
    if len(raw) > _MAX_BODY:
        return JSONResponse({"error": "too large"}, status_code=413)
    try:
        data = await request.json()
        subject = str(data.get("subject") or "Newsroom: Meldung aus Prefect")[:300]
        body = str(data.get("body") or "")[:_MAX_BODY]
    except (ValueError, AttributeError):
        return JSONResponse({"error": "expected JSON {subject, body}"}, status_code=400)
    if context.notifier is None:
        logger.warning("alert received but no notifier is configured: %s", subject)
        return JSONResponse({"delivered": False}, status_code=503)
    delivered = await run_in_threadpool(context.notifier().notify, ALERT_TAG, subject, body)
    logger.info("alert passed on (%s): %s", "delivered" if delivered else "NOT delivered",
                subject)
    return JSONResponse({"delivered": bool(delivered)}, status_code=200 if delivered else 502)
