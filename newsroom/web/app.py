"""The web app factory: one FastAPI app, one router per feature.

    app = create_web_app(engine, catalog, settings)
    uvicorn.run(app, host="127.0.0.1", port=8000)

Routers: :mod:`newsroom.web.manual` (``/manual/{token}``: confirming a post made by
hand), :mod:`newsroom.web.approval` (``/freigabe/{token}``: the approval page),
:mod:`newsroom.web.requests` (``/anfrage/{token}``: the request form) and
:mod:`newsroom.web.hooks` (``/hooks/alert``). In front of them all,
:class:`newsroom.web.guard.RequestGuard` enforces the rate and body limits.
No API docs are served: the app is for people following links, and its pages are German.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy.engine import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from newsroom.approval import GateStatus
from newsroom.catalog.catalog import Catalog
from newsroom.redaction import install_log_redaction
from newsroom.settings import Settings, get_settings
from newsroom.signing import Signer
from newsroom.store.db import make_read_engine
from newsroom.web import approval, hooks, manual
from newsroom.web import requests as office_requests
from newsroom.web.guard import RequestGuard
from newsroom.web.pages import Pages, SecurityHeadersMiddleware, WebContext

logger = logging.getLogger("newsroom.web")

_STATUS_TEXT = {
    404: ("Seite nicht gefunden", "Diese Adresse gibt es hier nicht.",
          "Bitte prüfen Sie, ob der Link vollständig ist."),
    405: ("Aktion nicht möglich", "Diese Seite kann so nicht aufgerufen werden.",
          "Bitte öffnen Sie den Link aus Ihrer E-Mail."),
}


def create_web_app(
    engine: Engine,
    catalog: Catalog | Callable[[], Catalog],
    settings: Settings | None = None,
    *,
    signer: Signer | None = None,
    on_gate_settled: Callable[[GateStatus], Awaitable[None] | None] | None = None,
    on_gate_decided: Callable[[GateStatus], Awaitable[None] | None] | None = None,
    notifier: Callable[[], Any] | None = None,
    on_request_submitted: Callable[[int], Awaitable[None] | None] | None = None,
) -> FastAPI:
    """The Newsroom web app over the store at ``engine`` and the loaded ``catalog``.

    ``on_gate_settled`` is called (and awaited if it returns an awaitable) after an
    approval decision settled or escalated a gate, e.g. to resume the waiting flow run;
    its errors are logged, not shown: the decision is stored either way.
    ``on_gate_decided`` likewise after a decision that left the gate open (a signature of
    several), e.g. to show it on the waiting flow run.
    ``on_request_submitted`` is called with a stored request's id (``/anfrage``), e.g. to
    start its Prefect run; its errors are logged, the request stays stored.
    """
    install_log_redaction()
    settings = settings or get_settings()
    pages = Pages()
    context = WebContext(engine=engine, catalog_source=catalog, settings=settings,
                         signer=signer or Signer.from_settings(settings), pages=pages,
                         on_gate_settled=on_gate_settled, on_gate_decided=on_gate_decided,
                         notifier=notifier, reader=make_read_engine(engine))
    app = FastAPI(title="Newsroom", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.newsroom = context
    app.state.on_request_submitted = on_request_submitted
    # The guard runs before any route (rate and body limits); the headers wrap everything.
    app.add_middleware(RequestGuard, settings=settings, pages=pages)
    app.add_middleware(SecurityHeadersMiddleware)
    app.include_router(manual.router)
    app.include_router(approval.router)
    app.include_router(hooks.router)
    app.include_router(office_requests.router)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        title, message, todo = _STATUS_TEXT.get(
            exc.status_code, ("Anfrage nicht möglich", "Diese Anfrage kann nicht bearbeitet "
                              "werden.", "Bitte öffnen Sie den Link aus Ihrer E-Mail erneut."))
        return pages.error(exc.status_code, title, message, todo)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        return pages.error(400, "Ungültige Anfrage", "Die Adresse ist unvollständig oder "
                           "fehlerhaft.", "Bitte öffnen Sie den Link aus Ihrer E-Mail erneut.")

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        logger.error("web: %s %s failed: %s", request.method, request.url.path.split("/")[1],
                     type(exc).__name__)
        return pages.error(500, "Ein Fehler ist aufgetreten",
                           "Ihre Anfrage konnte wegen eines internen Fehlers nicht bearbeitet "
                           "werden.",
                           "Bitte versuchen Sie es später noch einmal oder wenden Sie sich an "
                           "das Amt für Kommunikation.")

    return app
