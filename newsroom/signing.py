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
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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
]

MANUAL_CONFIRM = "manual-confirm"
APPROVAL = "approval"

_PLACEHOLDER_KEY = "development-only-not-secret"
_MIN_KEY_LENGTH = 32
_MAX_TOKEN_LENGTH = 4096  # refuse absurd input before decoding it


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
    """The configured secret key must not sign links in this environment."""


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
        root = value.encode("utf-8")
        # One key per use, so a value made for one thing never verifies as another.
        self._token_key = hmac.new(root, b"newsroom/link-token/v1", hashlib.sha256).digest()
        self._csrf_key = hmac.new(root, b"newsroom/csrf/v1", hashlib.sha256).digest()

    def __repr__(self) -> str:
        return "<Signer key=***>"

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Signer:
        """A signer with ``settings.secret_key``; refuses the placeholder outside development."""
        settings = settings or get_settings()
        value = settings.secret_key.get_secret_value()
        if settings.environment != "development" and (
            value == _PLACEHOLDER_KEY or len(value) < _MIN_KEY_LENGTH
        ):
            raise SigningKeyRefused(
                f"NEWSROOM_SECRET_KEY is the development placeholder or shorter than "
                f"{_MIN_KEY_LENGTH} characters, which is not allowed in environment "
                f"{settings.environment!r}; set it to a long random value, e.g. "
                "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        return cls(settings.secret_key)

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
