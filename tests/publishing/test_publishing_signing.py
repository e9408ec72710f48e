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
    is_short_token,
    resolve_secret_key,
    short_token_ref,
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


# --- short tokens (the approval mails' links) ---

BINDING = ("nonce-" + "n" * 38, "akdeniz", "ab" * 32)


def test_a_short_token_is_short_and_holds_for_its_row_and_binding() -> None:
    token = Signer(KEY).issue_short(purpose=APPROVAL, ref=12, binding=BINDING)
    assert token.startswith("12-") and len(token) == 3 + 22 and is_short_token(token)
    assert short_token_ref(token) == 12
    Signer(KEY).verify_short(token, purpose=APPROVAL, binding=BINDING)  # no error
    # the same row and binding, the same link (the first mail's and a reminder's)
    assert Signer(KEY).issue_short(purpose=APPROVAL, ref=12, binding=BINDING) == token


@pytest.mark.parametrize("purpose, binding", [
    (MANUAL_CONFIRM, BINDING),  # made for something else
    (APPROVAL, ("nonce-other", *BINDING[1:])),  # the request was asked again
    (APPROVAL, (BINDING[0], "benz", BINDING[2])),  # another person
    (APPROVAL, (*BINDING[:2], "cd" * 32)),  # other content
    (APPROVAL, BINDING[:2]),  # a binding that ends early
    (APPROVAL, (f"{BINDING[0]}\",\"{BINDING[1]}", BINDING[2])),  # parts run together
])
def test_a_short_token_refuses_another_purpose_or_binding(purpose, binding) -> None:
    token = Signer(KEY).issue_short(purpose=APPROVAL, ref=12, binding=BINDING)
    with pytest.raises(BadSignature):
        Signer(KEY).verify_short(token, purpose=purpose, binding=binding)


@pytest.mark.parametrize("mangle", [
    lambda t: "13" + t[2:],  # another row with this MAC
    lambda t: t[:-1] + ("B" if t[-1] == "A" else "A"),
    lambda t: t[:-1],
    lambda t: t + "A",
    lambda t: t + "\n",
    lambda t: "012" + t[2:],
    lambda t: t.replace("-", ".", 1),
    lambda t: "١٢" + t[2:],  # Arabic-Indic digits are digits to int(), not to us
    lambda t: Signer("another-key-" + "z" * 40).issue_short(purpose=APPROVAL, ref=12,
                                                            binding=BINDING),
])
def test_a_mangled_short_token_is_a_bad_signature(mangle) -> None:
    token = mangle(Signer(KEY).issue_short(purpose=APPROVAL, ref=12, binding=BINDING))
    with pytest.raises(BadSignature):
        Signer(KEY).verify_short(token, purpose=APPROVAL, binding=BINDING)


@pytest.mark.parametrize("ref", [0, -1, True, "12"])
def test_a_short_token_names_a_row_id(ref) -> None:
    with pytest.raises(ValueError):
        Signer(KEY).issue_short(purpose=APPROVAL, ref=ref, binding=BINDING)
