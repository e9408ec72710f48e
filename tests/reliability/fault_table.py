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


# --- the recall side: the same faults on the request that takes the post down --------------

# What the recall of one published post must come to; test_recall_matrix.py asserts each.
RECALL_OUTCOMES = {
    "gone": "🗑️ deleted once",
    "corrected": "✉️ correction sent once",
    "next": "⏳ failed, housekeeping finishes it",
    "unknown": "❓ unknown, never mailed twice",
    "refused": "⛔ failed, credential refused",
    None: "—",
}
RECALL_LEGEND = {
    "gone": "status `gone` in the same recall: the stand-in shows the post deleted, "
            "deleted once, after exactly one repeat (a 429 waits as the network says — "
            "Graph's code 4 names no wait: 0.5 s; a lost answer is repeated, deleting again "
            "being harmless: a dropped connection at once, on a new one, the others after "
            "0.5 s; the repeat finds the post gone — Mastodon's 404, Bluesky's no-op, "
            "LinkedIn's 204, Graph's \"does not exist\", Telegram's \"not found\", the "
            "CMS's `already_withdrawn` — or, after a slow answer, deletes it before the late "
            "request, which then finds it gone); one "
            "`recall.gone` in the audit trail, the office told „gelöscht“; recalling again "
            "calls no network",
    "corrected": "the press e-mail cannot be taken back: status `corrected`, each original "
                 "recipient got the correction „Zurückgezogen: …“ exactly once (a retry "
                 "writes only to those who did not get it); recalling again mails nobody",
    "next": "the recall gives up after 5 attempts with status `failed` (retryable), nothing "
            "deleted; the office is told „Löschen fehlgeschlagen“; housekeeping's "
            "`finish_recalls` (another process: another HTTP client, another publisher) "
            "then takes it down once (the press e-mail: sends the correction once, to "
            "those who did not get it — what a failed try delivered is recorded with its "
            "`recall.failed` event and handed back, "
            "`test_a_correction_cut_short_is_finished_without_mailing_anyone_twice`), and "
            "a further sweep has nothing left to do",
    "unknown": "the correction was handed to the mail server but not confirmed: status "
               "`unknown` at once, not repeated (that could mail someone twice); each "
               "recipient holds exactly one correction, the office is told „unklar, bitte "
               "prüfen“, housekeeping leaves it to a person",
    "refused": "status `failed` at once (no retries), nothing deleted or mailed; the detail "
               "and the office's message carry the network's words about the credential, "
               "never the secret; once the credential is renewed, housekeeping's "
               "`finish_recalls` takes it down once",
    None: "not applicable: SMTP has no gateway",
}
_RECALL_PRESSE = {"429": "corrected", "500": "corrected", "500s": "next", "slow": "unknown",
                  "drop": "unknown", "401": "refused"}
_RECALL_HTTP = {"500s": "next", "401": "refused"}


def expected_recall(channel: str, fault: str) -> str | None:
    """The outcome code of one recall cell (a key of RECALL_OUTCOMES): the fault strikes
    the request that takes the post down (the press e-mail: the correction's SMTP
    session). Every network's delete is harmless to repeat (a second one finds the post
    gone), so only an error that lasts, or a refused credential, keeps a post up; the
    correction e-mail is never repeated after a lost answer. Instagram, through the
    Instagram API with Facebook Login as here, deletes a single post (``DELETE
    /{ig-media-id}``); only through Instagram Login, or for media it cannot delete (a
    carousel's child), is a person asked (``manual``; tests/channels)."""
    if channel == "presse":
        return None if FAULTS[fault].smtp is None else _RECALL_PRESSE[fault]
    return _RECALL_HTTP.get(fault, "gone")


def recall_cells() -> list[tuple[str, str, str | None]]:
    return [(c, f, expected_recall(c, f)) for c in CHANNELS for f in FAULTS]


RECALL_BEGIN = "<!-- recall-matrix:begin (written by bench/fault_matrix.py) -->"
RECALL_END = "<!-- recall-matrix:end -->"


def recall_markdown() -> str:
    """The recall matrix and its legend as Markdown, between its markers."""
    head = "| network | " + " | ".join(f.title for f in FAULTS.values()) + " |"
    rule = "|---" * (len(FAULTS) + 1) + "|"
    rows = [f"| {c} | " + " | ".join(RECALL_OUTCOMES[expected_recall(c, f)] for f in FAULTS)
            + " |" for c in CHANNELS]
    used = {code for _, _, code in recall_cells()}
    legend = [f"- {RECALL_OUTCOMES[code]}: {text}." for code, text in RECALL_LEGEND.items()
              if code in used]
    return "\n".join([
        RECALL_BEGIN, head, rule, *rows, "",
        "The faults are those of the publishing matrix, on the request that takes the post "
        "down (Mastodon `DELETE /api/v1/statuses/:id`, Bluesky `deleteRecord`, LinkedIn "
        "`DELETE /rest/posts/:urn`, Graph `DELETE /:id`, Telegram `deleteMessage`, the "
        "website's `POST …/withdraw`; the press e-mail: the correction's SMTP session); "
        "slow, dropped and gateway faults let the network carry the delete out.", "",
        "What the test asserts in each cell:", "", *legend, RECALL_END])
