"""Signed link tokens and CSRF values (no servers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from newsroom.settings import Settings
from newsroom.signing import (
    APPROVAL,
    MANUAL_CONFIRM,
    BadSignature,
    Expired,
    InvalidToken,
    Signer,
    SigningKeyRefused,
    WrongPurpose,
    ensure_demo_key,
    resolve_secret_key,
)

KEY = "k" * 48
NOW = datetime(2027, 1, 27, 8, 0, tzinfo=UTC)
CLAIMS = dict(purpose=MANUAL_CONFIRM, subject={"publication": 12, "post": 7},
              person="amt-kommunikation", content_hash="ab" * 32)


def issue(signer: Signer | None = None, **overrides) -> str:
    values = {**CLAIMS, "ttl": timedelta(days=7), "now": NOW, **overrides}
    return (signer or Signer(KEY)).issue(**values)[0]


def test_a_token_carries_its_claims() -> None:
    token, issued = Signer(KEY).issue(**CLAIMS, ttl=timedelta(days=7), now=NOW)
    claims = Signer(SecretStr(KEY)).verify(token, purpose=MANUAL_CONFIRM, now=NOW)
    assert claims == issued
    assert claims.subject == {"publication": 12, "post": 7}
    assert claims.person == "amt-kommunikation" and claims.content_hash == "ab" * 32
    assert claims.expires_at == NOW + timedelta(days=7) and len(claims.nonce) >= 16
    assert token.isascii() and "/" not in token and "+" not in token  # URL-safe


def test_every_token_gets_its_own_nonce() -> None:
    assert issue() != issue()


@pytest.mark.parametrize("token", [
    "", "abc", "a.b.c", "ä.ö", "x" * 5000, issue() + "x", "x" + issue(),
    issue().split(".")[0] + ".AAAA", issue(Signer("another-key-" + "z" * 40)),
])
def test_anything_not_signed_by_us_is_a_bad_signature(token: str) -> None:
    with pytest.raises(BadSignature):
        Signer(KEY).verify(token, purpose=MANUAL_CONFIRM, now=NOW)


def test_a_changed_payload_is_a_bad_signature() -> None:
    token = issue()
    body, mac = token.split(".")
    other_body = issue(subject={"publication": 13, "post": 7}).split(".")[0]
    with pytest.raises(BadSignature):
        Signer(KEY).verify(f"{other_body}.{mac}", purpose=MANUAL_CONFIRM, now=NOW)


def test_expiry_and_purpose_are_checked_after_the_signature() -> None:
    signer = Signer(KEY)
    later = NOW + timedelta(days=7)
    with pytest.raises(Expired) as caught:
        signer.verify(issue(), purpose=MANUAL_CONFIRM, now=later)
    assert caught.value.claims.subject["publication"] == 12
    with pytest.raises(WrongPurpose):
        signer.verify(issue(purpose=APPROVAL), purpose=MANUAL_CONFIRM, now=NOW)
    forged_and_old = issue(Signer("another-key-" + "z" * 40))
    with pytest.raises(BadSignature):  # a forgery learns nothing about expiry
        signer.verify(forged_and_old, purpose=MANUAL_CONFIRM, now=later)
    assert issubclass(Expired, InvalidToken) and issubclass(WrongPurpose, InvalidToken)


def test_no_key_no_placeholder_no_short_key(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(SigningKeyRefused, match="NEWSROOM_SECRET_KEY"):
        Signer.from_settings(settings)
    # The placeholder of earlier versions is public: refused in every setting.
    with pytest.raises(SigningKeyRefused, match="placeholder"):
        Signer.from_settings(Settings(data_dir=tmp_path,
                                      secret_key=SecretStr("development-only-not-secret")))
    with pytest.raises(SigningKeyRefused, match="placeholder"):
        Signer("development-only-not-secret")
    with pytest.raises(SigningKeyRefused, match="shorter"):
        Signer.from_settings(Settings(data_dir=tmp_path, secret_key=SecretStr("short")))
    assert Signer.from_settings(Settings(data_dir=tmp_path, secret_key=SecretStr(KEY)))
    assert KEY not in repr(Signer(KEY))


def test_the_key_file_and_the_demo_key(tmp_path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o644)
    with pytest.raises(SigningKeyRefused, match="chmod 600"):
        resolve_secret_key(Settings(data_dir=tmp_path, secret_key_file=key_file))
    key_file.chmod(0o600)
    assert resolve_secret_key(Settings(data_dir=tmp_path, secret_key_file=key_file)
                              ).get_secret_value() == KEY

    settings = Settings(data_dir=tmp_path / "var")
    path = ensure_demo_key(settings)
    assert path.stat().st_mode & 0o777 == 0o600
    demo_key = resolve_secret_key(settings).get_secret_value()
    assert len(demo_key) >= 48
    assert ensure_demo_key(settings) == path  # kept: links survive a restart
    assert resolve_secret_key(settings).get_secret_value() == demo_key
    # Only the demo may use it: `newsroom web`/`worker`/`up --no-demo` ask for a real one.
    with pytest.raises(SigningKeyRefused, match="no secret key is configured"):
        resolve_secret_key(settings, allow_demo=False)
    # A configured key wins over the demo's.
    assert resolve_secret_key(Settings(data_dir=tmp_path / "var", secret_key=SecretStr(KEY))
                              ).get_secret_value() == KEY


def test_csrf_values_are_bound_to_cookie_and_link() -> None:
    signer = Signer(KEY)
    value = signer.csrf_value("cookie-1", "nonce-1")
    assert signer.csrf_ok("cookie-1", "nonce-1", value)
    assert not signer.csrf_ok("cookie-2", "nonce-1", value)
    assert not signer.csrf_ok("cookie-1", "nonce-2", value)
    assert not signer.csrf_ok(None, "nonce-1", value)
    assert not signer.csrf_ok("cookie-1", "nonce-1", None)
    assert not signer.csrf_ok("cookie-1", "nonce-1", "ä")
    assert not Signer("another-key-" + "z" * 40).csrf_ok("cookie-1", "nonce-1", value)
