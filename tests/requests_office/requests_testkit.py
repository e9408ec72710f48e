"""Helpers of the request tests: a catalog copy, a migrated store, images and forms."""

from __future__ import annotations

import shutil
import struct
import zlib
from datetime import date, timedelta
from pathlib import Path

from newsroom.requests import ImageUpload, RequestForm

ROOT = Path(__file__).resolve().parents[2]
SECRET = "request-tests-secret-key-0123456789-abcdefghij"


def copy_catalog(target: Path) -> Path:
    """A copy of the project's catalog at ``target`` (campaign files, registry, images)."""
    shutil.copytree(ROOT / "campaigns", target)
    return target


def png(width: int = 4, height: int = 3, *, pad_to: int = 0) -> bytes:
    """A real PNG (decodable), optionally padded with an ancillary chunk to ``pad_to``."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    raw = b"".join(b"\x00" + b"\x33\x66\x99" * width for _ in range(height))
    body = (chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)))
    data = b"\x89PNG\r\n\x1a\n" + body
    if pad_to > len(data):
        data += chunk(b"tEXt", b"c\x00" + b"x" * (pad_to - len(data) - 14))
    return data + chunk(b"IEND", b"")


def form(**changes) -> RequestForm:
    """A complete, valid form of the Sportdezernat (override fields with ``changes``)."""
    day = (date.today() + timedelta(days=20)).isoformat()
    values = dict(
        title="Stadtlauf 2027", topic="Sport", date_from=day, date_to="", time="09:30",
        channels=("mastodon", "bluesky"),
        text="Am Sonntag ist Stadtlauf! Alle Strecken und Zeiten auf unserer Seite.",
        hashtags="Stadtlauf SportInDarmstadt", links="https://www.darmstadt.example.org/lauf",
        notes="Bitte mit Foto.", contact_name="Kim Weber", contact_email="kim@example.org",
        images=(ImageUpload(1, "lauf.png", png(), "Läuferinnen am Start auf dem Luisenplatz"),),
    )
    values.update(changes)
    return RequestForm(**values)


