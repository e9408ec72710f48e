"""Access to the Prefect API: its credential, and whether a server keeps strangers out.

Prefect's open-source server has one shared credential (basic auth, ``user:password``):
the server checks ``PREFECT_SERVER_API_AUTH_STRING``, every client sends
``PREFECT_API_AUTH_STRING``. Without it anyone who reaches the API can resume a waiting
approval, start the crisis deployment or read Secret blocks (docs/SECURITY.md).

- :func:`load_or_create_auth_string`: the credential ``newsroom up`` generates for the
  server it starts, kept in its data dir (mode 0600) so it survives a restart.
- :func:`probe`: what a Prefect API says to us, and to someone without the credential.

Plain httpx, no Prefect import: the CLI decides with this before Prefect reads its
settings.
"""

from __future__ import annotations

import base64
import enum
import os
import secrets
import stat
from pathlib import Path

import httpx

from newsroom.errors import NewsroomError

__all__ = [
    "AUTH_STRING_FILE",
    "ApiAccess",
    "CredentialFileError",
    "PrefectAccessRefused",
    "read_private_file",
    "require_usable_api",
    "auth_header",
    "load_or_create_auth_string",
    "probe",
    "read_auth_string",
]

AUTH_STRING_FILE = "api-auth-string"  # in the Prefect server's home (var/prefect/)
AUTH_USER = "newsroom"


class CredentialFileError(NewsroomError):
    """The credential file exists but must not be used (others may read it, or it is empty)."""


def read_private_file(path: Path) -> str | None:
    """The text of ``path``, a file only this user may read; None when there is no such
    file. Raises :class:`CredentialFileError` for a file others may read or write."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialFileError(
            f"{path} may be read by other users (mode {stat.filemode(info.st_mode)}); "
            f"make it private (chmod 600 {path}) or delete it")
    return path.read_text(encoding="utf-8")


def read_auth_string(path: Path) -> str | None:
    """The credential kept at ``path``; None when there is no such file.

    Refuses a file that other users may read or write: the credential opens the whole
    Prefect API.
    """
    text = read_private_file(path)
    if text is None:
        return None
    value = text.strip()
    if ":" not in value or len(value) < 20:
        raise CredentialFileError(f"{path} does not hold a user:password credential; "
                                  "delete it to have a new one generated")
    return value


def load_or_create_auth_string(path: Path) -> str:
    """The credential at ``path``, generated there (mode 0600) on first use."""
    existing = read_auth_string(path)
    if existing is not None:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    value = f"{AUTH_USER}:{secrets.token_urlsafe(32)}"
    # O_EXCL: two processes starting at once never overwrite each other's credential.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        again = read_auth_string(path)
        if again is None:  # pragma: no cover - created and removed in between
            raise CredentialFileError(f"{path} vanished while it was being created") from None
        return again
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    return value


def auth_header(auth_string: str) -> dict[str, str]:
    token = base64.b64encode(auth_string.encode("utf-8")).decode("ascii")
    return {"Authorization": f"Basic {token}"}


class ApiAccess(enum.Enum):
    """What :func:`probe` found."""

    PROTECTED = "protected"  # refuses strangers, accepts our credential
    UNREACHABLE = "unreachable"  # no Prefect API answers there
    CREDENTIAL_REFUSED = "credential refused"  # answers, but not to our credential
    OPEN = "open"  # answers anyone: no authentication

    @property
    def explanation(self) -> str:
        return _EXPLANATIONS[self]


_EXPLANATIONS = {
    ApiAccess.PROTECTED: "the API refuses requests without the credential",
    ApiAccess.UNREACHABLE: "no Prefect API answers there",
    ApiAccess.CREDENTIAL_REFUSED: (
        "the API refuses Newsroom's credential: set PREFECT_API_AUTH_STRING to the "
        "server's PREFECT_SERVER_API_AUTH_STRING (user:password)"),
    ApiAccess.OPEN: (
        "the API answers without any credential, so anyone who reaches it can approve "
        "campaigns, start a crisis message and read Secret blocks: start the server with "
        "PREFECT_SERVER_API_AUTH_STRING=user:password and give the same value to Newsroom "
        "as PREFECT_API_AUTH_STRING (docs/DEPLOYMENT.md)"),
}

# A harmless read that needs authentication (health and ready are left open by Prefect).
_PROBE_PATH = "/flow_runs/count"


def probe(api_url: str, auth_string: str | None, *, timeout: float = 3.0) -> ApiAccess:
    """Ask the API at ``api_url`` once without and once with ``auth_string``."""
    base = api_url.rstrip("/")
    try:
        with httpx.Client(timeout=timeout) as client:
            if client.get(f"{base}/health").status_code != 200:
                return ApiAccess.UNREACHABLE
            anonymous = client.post(f"{base}{_PROBE_PATH}", json={})
            if anonymous.status_code == 200:
                return ApiAccess.OPEN
            if anonymous.status_code != 401:
                return ApiAccess.UNREACHABLE
            if not auth_string:
                return ApiAccess.CREDENTIAL_REFUSED
            ours = client.post(f"{base}{_PROBE_PATH}", json={},
                               headers=auth_header(auth_string))
            return (ApiAccess.PROTECTED if ours.status_code == 200
                    else ApiAccess.CREDENTIAL_REFUSED)
    except httpx.HTTPError:
        return ApiAccess.UNREACHABLE


class PrefectAccessRefused(NewsroomError):
    """Newsroom will not work with this Prefect API: it refuses our credential, or it
    answers anyone."""


def require_usable_api(api_url: str, auth_string: str | None, *, allow_open: bool = False,
                       timeout: float = 3.0) -> bool:
    """True when the API at ``api_url`` answers us and keeps strangers out; False when no
    API answers there. Raises :class:`PrefectAccessRefused` for an API that refuses our
    credential, or that answers without one (unless ``allow_open``:
    ``NEWSROOM_PREFECT_ALLOW_UNAUTHENTICATED``, for an API no one else can reach)."""
    access = probe(api_url, auth_string, timeout=timeout)
    if access is ApiAccess.UNREACHABLE:
        return False
    if access is ApiAccess.PROTECTED or (access is ApiAccess.OPEN and allow_open):
        return True
    todo = ("" if access is ApiAccess.CREDENTIAL_REFUSED else
            "; if nobody else can reach it, NEWSROOM_PREFECT_ALLOW_UNAUTHENTICATED=true "
            "lets Newsroom use it anyway")
    raise PrefectAccessRefused(f"the Prefect API at {api_url}: {access.explanation}{todo}")
