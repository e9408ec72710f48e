"""Newsroom's settings: one :class:`Settings` object per process.

Read from the environment (prefix ``NEWSROOM_``, or a ``.env`` file) once, by
:func:`get_settings`; a command that decides settings itself (``newsroom up`` sets the
approval page's and the mail catcher's addresses, the stack's catalog overlay) builds its
object with :meth:`Settings.model_copy` and hands it to the process with
:func:`use_settings` instead of writing the environment. Functions that take a
``settings`` argument use the one they are given; the others (a flow run in the worker, a
route of the web app) ask :func:`get_settings`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEWSROOM_", env_file=".env", extra="ignore")

    # Where the campaign files, the registry and the templates live.
    catalog_dir: Path = PROJECT_ROOT / "campaigns"
    # What one running stack adds to that catalog without copying it: how its accounts are
    # reached (the demo's stand-ins) and its own campaigns (the demo campaign). Written and
    # set by `newsroom up` (see newsroom/catalog/overlay.py); unset elsewhere.
    catalog_overlay: Path | None = None
    # Working data: the SQLite database, previews, the Atom feed.
    data_dir: Path = PROJECT_ROOT / "var"
    # SQLAlchemy URL; default is a SQLite file in data_dir. For PostgreSQL e.g.
    # postgresql+psycopg://newsroom@127.0.0.1:5432/newsroom
    database_url: str | None = None
    # Signs the links people get by mail and derives the alert hook's token; at least 32
    # characters. NEWSROOM_SECRET_KEY, or NEWSROOM_SECRET_KEY_FILE naming a file that holds
    # it. There is no default: only the demo (`newsroom up`) generates one, kept in the data
    # dir as `secret-key` (mode 0600) — see newsroom/signing.py.
    secret_key: SecretStr | None = None
    secret_key_file: Path | None = None
    # Newsroom refuses a Prefect API that answers without a credential (anyone reaching it
    # could approve and publish); true only for an API nobody else can reach.
    prefect_allow_unauthenticated: bool = False
    # Where people reach the web app (approval page, manual confirmations); goes into links.
    web_base_url: str = "http://127.0.0.1:8100"
    # The demo's stand-in channels (`newsroom up`): the publication report links each post
    # to its page there, as the networks' own URLs (bsky.app, t.me, …) do not exist.
    standins_url: str | None = None
    # Outgoing mail for approvals, reminders and alerts (apprise's e-mail service), in the
    # format smtp://user:password@host:port?from=addr; the embedded default is the local
    # mail catcher of `newsroom up`.
    smtp_url: SecretStr = Field(default=SecretStr("smtp://127.0.0.1:8025?from=newsroom@darmstadt.example.org"))
    # Optional apprise configuration file (YAML or text, one service per person/office,
    # tagged with their id: Teams, Matrix, Signal, ntfy...). Replaces the e-mail default.
    apprise_config: Path | None = None
    # An approved campaign whose first post is further away than this ends its run and
    # schedules a publication run `publish_preroll_seconds` before the post's time.
    publish_lead_seconds: float = 600.0
    publish_preroll_seconds: float = 45.0
    # ... and up to this much earlier, by an offset fixed per occurrence, so that many
    # publication runs due at one second start one after another
    # (newsroom.planning.publication_run_start); at most publish_lead - publish_preroll.
    publish_spread_seconds: float = 240.0
    # Prefect work pool the deployments run on; its type decides the worker.
    work_pool: str = "newsroom"
    # Catalog sync / `newsroom schedule`: how far ahead campaign runs are created in Prefect
    # (yearly campaigns always get their next date, however far), and how long before an
    # occurrence's approval deadline its run starts and asks the approvers.
    schedule_horizon_days: int = 60
    approval_lead: str = "7d"
    # Rate limits of the web app's public routes (newsroom/web/guard.py), in the notation
    # of the `limits` library ("5/minute;30/hour": both apply); empty turns one off. Per
    # client address: every request, and the form posts among them (an office behind one
    # NAT address shares these); per link: opening it (the approval page and its images),
    # its form posts, and the requests submitted through one invitation; /hooks/alert per
    # address. Counted in `rate_limit_storage`: memory:// is per process; several web
    # processes share one count in e.g. redis://host:6379 (needs the redis package).
    rate_limit_storage: str = "memory://"
    rate_limit_address: str = "600/minute"
    rate_limit_address_posts: str = "60/minute"
    rate_limit_link_views: str = "120/minute"
    rate_limit_link_posts: str = "10/minute;30/hour"
    rate_limit_invitation_posts: str = "5/minute;30/hour"
    rate_limit_hooks: str = "120/minute"

    def overlay_for(self, catalog_dir: Path | None) -> Path | None:
        """The overlay to load ``catalog_dir`` with (None: the default catalog): the
        running stack's, for the stack's catalog only."""
        if self.catalog_overlay is None:
            return None
        if catalog_dir is not None and catalog_dir.resolve() != self.catalog_dir.resolve():
            return None
        return self.catalog_overlay

    def as_environment(self, *names: str) -> dict[str, str]:
        """The settings ``names`` (unset ones left out) as the ``NEWSROOM_*`` variables
        another process reads them from (the running stack's record for second shells)."""
        environment = {}
        for name in names:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            environment[f"NEWSROOM_{name.upper()}"] = str(value)
        return environment

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{self.data_dir / 'newsroom.db'}"


_chosen: Settings | None = None


@lru_cache
def _settings_from_environment() -> Settings:
    return Settings()


def get_settings() -> Settings:
    """The process's settings: those given to :func:`use_settings`, else the environment's
    (read once; :func:`reread_settings` reads it again)."""
    return _chosen if _chosen is not None else _settings_from_environment()


def use_settings(settings: Settings | None) -> None:
    """Make ``settings`` the process's settings (None: the environment's again)."""
    global _chosen
    _chosen = settings


def reread_settings() -> None:
    """Read the environment again at the next :func:`get_settings` (after it changed:
    tests, the running stack's record applied by the CLI)."""
    _settings_from_environment.cache_clear()
