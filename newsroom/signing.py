"""Signed, expiring tokens for the links Newsroom e-mails to people.

A token says *for what* (``purpose``: "manual-confirm" now, "approval" later), *about
what* (``subject``: record ids, and the ``content_hash`` the person saw), *for whom*
(``person``), carries a random ``nonce`` and an expiry, and is signed with HMAC-SHA256
under a key derived from ``Settings.secret_key``::

    <base64url(JSON claims)>.<base64url(HMAC-SHA256)>

Verification raises one of the typed errors below, checked in this order so a forged
token never learns more than "bad signature"::

    InvalidToken
    ├── BadSignature    not made by us, or altered, or not a token at all
    ├── WrongPurpose    a genuine token for something else (an approval link on the
    │                   confirmation page)
    └── Expired         a genuine token whose time is up

A token is not single-use by itself: the action it authorises is refused by the state in
the database once done (a confirmed publication cannot be confirmed again).

A *short* token (:meth:`Signer.issue_short`) is for links people read and click in an
e-mail: ``<ref>-<base64url(HMAC-SHA256)[:22]>``, about 25 characters instead of several
hundred. It carries no claims: ``ref`` names a database row (an approval request) and the
MAC, 128 bits under its own derived key, binds the purpose and what that row says the link
is for (its nonce, person, content); the caller reads those from the row and
:meth:`Signer.verify_short` checks them. Expiry and single use are the row's (its deadline
and status), exactly as for the long token. See docs/SECURITY.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from newsroom.errors import NewsroomError
from newsroom.settings import Settings, get_settings

__all__ = [
    "APPROVAL",
    "MANUAL_CONFIRM",
    "BadSignature",
    "Expired",
    "InvalidToken",
    "SigningKeyRefused",
    "Signer",
    "TokenClaims",
    "WrongPurpose",
    "ensure_demo_key",
    "is_short_token",
    "short_token_ref",
    "resolve_secret_key",
]

MANUAL_CONFIRM = "manual-confirm"
APPROVAL = "approval"

# The placeholder earlier versions signed with when nothing was set: public, never accepted.
_PLACEHOLDER_KEY = "development-only-not-secret"
_MIN_KEY_LENGTH = 32
DEMO_KEY_FILE = "secret-key"  # in the data dir; written only by the demo (`newsroom up`)
_HOW_TO_SET = ("set NEWSROOM_SECRET_KEY to a long random value, e.g. python -c 'import "
               "secrets; print(secrets.token_urlsafe(48))', or NEWSROOM_SECRET_KEY_FILE to "
               "a file (mode 0600) that holds one")
_MAX_TOKEN_LENGTH = 4096  # refuse absurd input before decoding it
# A short token: a row id (digits, no leading zero) and 22 base64url characters of MAC
# (the first 16 bytes of an HMAC-SHA256: 128 bits, beyond guessing).
_SHORT_TOKEN = re.compile(r"([1-9][0-9]{0,17})-([A-Za-z0-9_-]{22})")


class InvalidToken(NewsroomError):
    """A link's token cannot be used."""


class BadSignature(InvalidToken):
    """The token was not issued by this Newsroom (or was changed on the way)."""


class WrongPurpose(InvalidToken):
    """The token is genuine but was issued for another purpose."""


class Expired(InvalidToken):
    """The token is genuine but its validity has ended."""

    def __init__(self, message: str, *, claims: TokenClaims):
        self.claims = claims
        super().__init__(message)


class SigningKeyRefused(NewsroomError):
    """No usable secret key: none configured, or one that must not sign links."""


def _check_key(value: str, where: str) -> SecretStr:
    if value == _PLACEHOLDER_KEY:
        raise SigningKeyRefused(f"{where} is the public development placeholder, which "
                                f"is never accepted; {_HOW_TO_SET}")
    if len(value) < _MIN_KEY_LENGTH:
        raise SigningKeyRefused(f"{where} is shorter than {_MIN_KEY_LENGTH} characters; "
                                f"{_HOW_TO_SET}")
    return SecretStr(value)


def _read_key_file(path: Path, where: str) -> SecretStr:
    try:
        info = path.stat()
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SigningKeyRefused(f"{where} {path} cannot be read ({exc.strerror}); "
                                f"{_HOW_TO_SET}") from None
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH | stat.S_IROTH):
        raise SigningKeyRefused(f"{where} {path} may be read or changed by other users "
                                f"(mode {stat.filemode(info.st_mode)}): chmod 600 {path}")
    return _check_key(value, f"{where} {path}")


def demo_key_path(settings: Settings) -> Path:
    return settings.data_dir / DEMO_KEY_FILE


def resolve_secret_key(settings: Settings | None = None, *, allow_demo: bool = True
                       ) -> SecretStr:
    """The key that signs links: ``NEWSROOM_SECRET_KEY``, else the file named by
    ``NEWSROOM_SECRET_KEY_FILE``, else (``allow_demo``) the key the demo generated in the
    data dir. Raises :class:`SigningKeyRefused` with what to do; nothing ever signs with
    a placeholder or a key others can read."""
    settings = settings or get_settings()
    if settings.secret_key is not None:
        return _check_key(settings.secret_key.get_secret_value(), "NEWSROOM_SECRET_KEY")
    if settings.secret_key_file is not None:
        return _read_key_file(settings.secret_key_file, "NEWSROOM_SECRET_KEY_FILE")
    demo = demo_key_path(settings)
    if allow_demo and demo.exists():
        return _read_key_file(demo, "the demo key")
    raise SigningKeyRefused(f"no secret key is configured: {_HOW_TO_SET}"
                            + (f" (`make run`, the demo, generates one in {demo})"
                               if allow_demo else ""))


def ensure_demo_key(settings: Settings) -> Path:
    """The demo's key file in the data dir, generated (mode 0600) if missing; what
    ``newsroom up`` with its demo does when no key is configured, so its links survive a
    restart."""
    path = demo_key_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secrets.token_urlsafe(48) + "\n")
    return path


@dataclass(frozen=True)
class TokenClaims:
    purpose: str
    subject: dict[str, Any]  # e.g. {"publication": 12, "post": 7}
    person: str  # person or office id the link was sent to
    content_hash: str
    nonce: str
    expires_at: datetime
    issued_at: datetime
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "p": self.purpose, "s": self.subject, "w": self.person, "h": self.content_hash,
            "n": self.nonce, "e": int(self.expires_at.timestamp()),
            "i": int(self.issued_at.timestamp()), "x": self.extra,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TokenClaims:
        return cls(
            purpose=str(data["p"]), subject=dict(data["s"]), person=str(data["w"]),
            content_hash=str(data["h"]), nonce=str(data["n"]),
            expires_at=datetime.fromtimestamp(int(data["e"]), UTC),
            issued_at=datetime.fromtimestamp(int(data["i"]), UTC),
            extra=dict(data.get("x") or {}),
        )


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Issues and verifies tokens; also makes the CSRF values of the web forms."""

    def __init__(self, secret_key: SecretStr | str):
        value = secret_key.get_secret_value() if isinstance(secret_key, SecretStr) else secret_key
        if not value:
            raise SigningKeyRefused("the secret key is empty; set NEWSROOM_SECRET_KEY")
        _check_key(value, "the secret key")
        self._derive_keys(value)

    def _derive_keys(self, value: str) -> None:
        root = value.encode("utf-8")
        # One key per use, so a value made for one thing never verifies as another.
        self._token_key = hmac.new(root, b"newsroom/link-token/v1", hashlib.sha256).digest()
        self._csrf_key = hmac.new(root, b"newsroom/csrf/v1", hashlib.sha256).digest()
        self._short_key = hmac.new(root, b"newsroom/short-link/v1", hashlib.sha256).digest()
        # The bearer token Prefect's alert automation sends to /hooks/alert.
        self.alert_hook_token = hmac.new(root, b"newsroom/prefect-alert-hook/v1",
                                         hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "<Signer key=***>"

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Signer:
        """A signer with the configured key (:func:`resolve_secret_key`)."""
        return cls(resolve_secret_key(settings))

    # -- tokens --

    def issue(
        self,
        *,
        purpose: str,
        subject: dict[str, Any],
        person: str,
        content_hash: str,
        ttl: timedelta,
        now: datetime | None = None,
        extra: dict[str, Any] | None = None,
    ) -> tuple[str, TokenClaims]:
        """A new token and its claims (with a fresh nonce)."""
        now = now or datetime.now(UTC)
        claims = TokenClaims(
            purpose=purpose, subject=dict(subject), person=person, content_hash=content_hash,
            nonce=secrets.token_urlsafe(16), expires_at=now + ttl, issued_at=now,
            extra=dict(extra or {}),
        )
        payload = json.dumps(claims.as_json(), separators=(",", ":"), sort_keys=True,
                             ensure_ascii=False).encode("utf-8")
        body = _b64encode(payload)
        return f"{body}.{self._mac(body)}", claims

    def verify(self, token: str, *, purpose: str, now: datetime | None = None) -> TokenClaims:
        """The claims of a genuine, unexpired token for ``purpose``; else a typed error."""
        if (not isinstance(token, str) or len(token) > _MAX_TOKEN_LENGTH
                or not token.isascii() or token.count(".") != 1):
            raise BadSignature("the link is incomplete or not a Newsroom link")
        body, mac = token.split(".")
        if not hmac.compare_digest(mac.encode("ascii"), self._mac(body).encode("ascii")):
            raise BadSignature("the link's signature does not match")
        try:
            claims = TokenClaims.from_json(json.loads(_b64decode(body)))
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            # Signed by us but unreadable: a bug, not an attack; still unusable.
            raise BadSignature(f"the link's content cannot be read ({type(exc).__name__})"
                               ) from None
        if claims.purpose != purpose:
            raise WrongPurpose(f"the link is for {claims.purpose!r}, not for {purpose!r}")
        now = now or datetime.now(UTC)
        if now >= claims.expires_at:
            raise Expired(f"the link expired at {claims.expires_at.isoformat()}", claims=claims)
        return claims

    def _mac(self, body: str) -> str:
        return _b64encode(hmac.new(self._token_key, body.encode("ascii"),
                                   hashlib.sha256).digest())

    # -- short tokens --

    def issue_short(self, *, purpose: str, ref: int, binding: tuple[str, ...]) -> str:
        """``<ref>-<mac>``: a link token for row ``ref`` that holds for ``purpose`` only
        while the row still says ``binding`` (e.g. its nonce, person and content hash)."""
        if isinstance(ref, bool) or not isinstance(ref, int) or ref < 1:
            raise ValueError(f"a short token names a row id, not {ref!r}")
        return f"{ref}-{self._short_mac(purpose, ref, binding)}"

    def verify_short(self, token: str, *, purpose: str, binding: tuple[str, ...]) -> None:
        """Raises :class:`BadSignature` unless ``token`` was issued for ``purpose`` and
        the row it names (:func:`short_token_ref`) with exactly this ``binding``."""
        ref = short_token_ref(token)
        mac = token.split("-", 1)[1]  # the ref is digits: the first "-" ends it
        if not hmac.compare_digest(mac.encode("ascii"),
                                   self._short_mac(purpose, ref, binding).encode("ascii")):
            raise BadSignature("the link's signature does not match")

    def _short_mac(self, purpose: str, ref: int, binding: tuple[str, ...]) -> str:
        # JSON, so no two (purpose, ref, binding) share a message.
        message = json.dumps([purpose, ref, *binding], separators=(",", ":"),
                             ensure_ascii=False).encode("utf-8")
        digest = hmac.new(self._short_key, message, hashlib.sha256).digest()
        return _b64encode(digest[:16])

    # -- CSRF (signed double-submit cookie) --

    def csrf_value(self, cookie: str, binding: str) -> str:
        """The form's CSRF field for the browser's ``cookie``, bound to one link."""
        message = f"{cookie}\x00{binding}".encode()
        return _b64encode(hmac.new(self._csrf_key, message, hashlib.sha256).digest())

    def csrf_ok(self, cookie: str | None, binding: str, submitted: str | None) -> bool:
        if not cookie or not submitted:
            return False
        if not submitted.isascii():
            return False
        return hmac.compare_digest(self.csrf_value(cookie, binding).encode(),
                                   submitted.encode("ascii"))


def short_token_ref(token: str) -> int:
    """The row id a short token names; :class:`BadSignature` when ``token`` does not have
    the shape of one (so it is never looked up). The id is not a secret: without the MAC
    it opens nothing."""
    match = _SHORT_TOKEN.fullmatch(token) if isinstance(token, str) else None
    if match is None:
        raise BadSignature("the link is incomplete or not a Newsroom link")
    return int(match.group(1))


def is_short_token(token: str) -> bool:
    """Whether ``token`` has the shape of a short token (and not of a signed one)."""
    return isinstance(token, str) and _SHORT_TOKEN.fullmatch(token) is not None
