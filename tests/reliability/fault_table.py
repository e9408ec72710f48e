"""The fault matrix: what each fault on each network must lead to, and what the office is
told. One table for the test (``test_fault_matrix.py`` asserts every cell) and for the
documentation (``bench/fault_matrix.py`` writes it into docs/RELIABILITY.md, and a test
checks that the document shows this very table).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Fault:
    title: str
    http: dict[str, Any] | None  # the stand-in's FaultRule (on the request making the post)
    smtp: tuple[str, int] | None  # FaultySmtp fault and times, or None: not applicable
    plays: str


FAULTS: dict[str, Fault] = {
    "429": Fault("429 + Retry-After", {"kind": "429", "retry_after": 3}, ("451-rcpt", 1),
                 "the network's rate limit once (its own way of saying how long to wait: "
                 "Retry-After, X-RateLimit-Reset, RateLimit-Reset, `retry_after`, Graph code "
                 "4); SMTP: 451 4.7.1 to RCPT"),
    "500": Fault("500 once", {"kind": "500"}, ("451-data", 1),
                 "one server error; SMTP: 451 4.3.0 to DATA"),
    "500s": Fault("500 ×10", {"kind": "500", "times": 10}, ("451-data", 50),
                  "server errors beyond the 5 attempts of one run; then the next run"),
    "slow": Fault("slow answer", {"kind": "slow", "delay": 2.0}, ("slow", 1),
                  "the answer comes after 2 s, the client gives up after 0.7 s (the "
                  "network still makes the post; SMTP: the server takes the message and "
                  "answers DATA after 2 s)"),
    "drop": Fault("dropped after receive", {"kind": "drop_after_receive"}, ("drop", 1),
                  "the network makes the post, then the connection closes without an "
                  "answer; SMTP: the message is stored, the connection cut before the 250"),
    "502": Fault("502 gateway", {"kind": "502"}, None,
                 "a proxy in front of the network forwards the request (the post is made) "
                 "and answers 502 Bad Gateway"),
    "504": Fault("504 gateway", {"kind": "504"}, None,
                 "as 502, with 504 Gateway Time-out"),
    "401": Fault("401 token refused", {"kind": "401", "times": 10, "path_contains": ""},
                 ("535", 50), "every request's credential is refused (Graph: code 190); "
                 "SMTP: 535 to AUTH"),
}

CHANNELS = ("mastodon", "mastodon-compatible", "bluesky", "linkedin", "facebook", "instagram",
            "threads", "telegram", "website", "presse")

# What must happen; the test asserts each of these for the cell.
OUTCOMES = {
    "once": "✅ published once",
    "next": "⏳ failed, next run publishes",
    "found": "🔎 published once, found by lookup",
    "unknown": "❓ unknown + alert",
    "refused": "⛔ failed + credential alert",
    None: "—",
}
LEGEND = {
    "once": "published, the stand-in holds exactly one post (or each recipient one mail), "
            "after retries in the same run (a 429 waits as the network says); no alert; "
            "a re-run does not call the network",
    "next": "the run gives up after 5 attempts with status `failed`, retryable: nothing "
            "went out, so the publisher sends no alert (the campaign run fails, and "
            "Prefect's automation tells the office); the next run (the campaign run again, or "
            "the office's `newsroom channels retry ID`) publishes it once",
    "found": "the answer was lost and the server ignores Idempotency-Key, so the publisher "
             "did not send again but found the status among the account's latest ones "
             "(exact text, created since the attempt began): published, one post, no "
             "pause, no alert; a re-run does not call the network",
    "unknown": "status `unknown`, the network holds exactly one post (it was made; the "
               "press e-mail: each recipient one mail, the others sent after the break), the "
               "office gets one alert „Veröffentlichung unklar – bitte prüfen“ naming the "
               "`newsroom channels resolve ID` command; a re-run does not send again",
    "refused": "status `failed` at once (no retries), no post; the office gets one alert "
               "„Veröffentlichung fehlgeschlagen“ with the network's words and what to do "
               "(renew the credential, `newsroom channels check`), without the secret; a "
               "re-run does not send until the office retries it (`newsroom channels retry ID`, "
               "named in the alert)",
    None: "not applicable: SMTP has no gateway",
}

_DEDUPLICATING = {"mastodon": "once", "bluesky": "once", "website": "once"}
_HTTP = {
    "429": "once", "500": "once", "500s": "next", "401": "refused",
    "slow": "unknown", "drop": "unknown", "502": "unknown", "504": "unknown",
}
_AMBIGUOUS = ("slow", "drop", "502", "504")


def expected(channel: str, fault: str) -> str | None:
    """The outcome code of one cell (a key of OUTCOMES).

    ``mastodon-compatible`` is a server of Mastodon's API that ignores Idempotency-Key
    (no v2 instance, connections closed after every answer, 422 for a refused token): a
    lost answer is looked up, found when the status was made by then ("slow": it is made
    only after the look, so it stays unknown)."""
    if channel == "mastodon-compatible" and fault in ("drop", "502", "504"):
        return "found"
    if channel == "presse":
        spec = FAULTS[fault].smtp
        if spec is None:
            return None
        return {"429": "once", "500": "once", "500s": "next", "slow": "unknown",
                "drop": "unknown", "401": "refused"}[fault]
    if fault in _AMBIGUOUS and channel in _DEDUPLICATING:
        return "once"  # the network recognises the repeat: retried, harmless
    return _HTTP[fault]


def cells() -> list[tuple[str, str, str | None]]:
    return [(c, f, expected(c, f)) for c in CHANNELS for f in FAULTS]


MARK_BEGIN = "<!-- fault-matrix:begin (written by bench/fault_matrix.py) -->"
MARK_END = "<!-- fault-matrix:end -->"


def markdown() -> str:
    """The matrix and its legend as Markdown, between the markers."""
    head = "| network | " + " | ".join(f.title for f in FAULTS.values()) + " |"
    rule = "|---" * (len(FAULTS) + 1) + "|"
    rows = [f"| {c} | " + " | ".join(OUTCOMES[expected(c, f)] for f in FAULTS) + " |"
            for c in CHANNELS]
    faults = [f"- **{f.title}**: {f.plays}." for f in FAULTS.values()]
    legend = [f"- {OUTCOMES[code]}: {text}." for code, text in LEGEND.items()]
    return "\n".join([MARK_BEGIN, head, rule, *rows, "", "Faults:", "", *faults, "",
                      "What the test asserts in each cell:", "", *legend, MARK_END])
