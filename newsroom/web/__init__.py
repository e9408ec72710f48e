"""Newsroom's small web app: pages people reach from the links in their notifications.

    app = create_web_app(engine, catalog, settings)

Routers live one per feature (:mod:`.manual`; the approval page joins later); shared
rendering and security headers are in :mod:`.pages`. The app never imports Prefect.
"""

from newsroom.web.app import create_web_app

__all__ = ["create_web_app"]
