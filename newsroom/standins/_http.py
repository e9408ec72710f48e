"""Request bodies as the stand-ins see them: JSON, url-encoded or multipart forms, bytes.

Parsed with the standard library (``email`` for multipart) so the stand-ins need no
``python-multipart``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse


@dataclass
class Upload:
    filename: str
    content_type: str
    data: bytes = field(repr=False)

    def describe(self) -> dict[str, Any]:
        return {"filename": self.filename, "content_type": self.content_type,
                "size": len(self.data), "sha256": hashlib.sha256(self.data).hexdigest()}


@dataclass
class Payload:
    kind: str  # json, form, multipart, binary, empty
    content_type: str = ""
    json: Any = None
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, Upload] = field(default_factory=dict)
    raw: bytes = field(default=b"", repr=False)

    def get(self, name: str, default: Any = None) -> Any:
        if self.kind == "json" and isinstance(self.json, dict):
            return self.json.get(name, default)
        values = self.fields.get(name)
        return values[-1] if values else default

    def getlist(self, name: str) -> list[Any]:
        if self.kind == "json" and isinstance(self.json, dict):
            value = self.json.get(name, self.json.get(name.removesuffix("[]")))
            return list(value) if isinstance(value, list) else []
        return self.fields.get(name) or self.fields.get(name.removesuffix("[]")) or []

    def describe(self) -> Any:
        """A JSON-safe picture of the body for the request log."""
        if self.kind == "json":
            return self.json
        if self.kind == "form":
            return {k: v[0] if len(v) == 1 else v for k, v in self.fields.items()}
        if self.kind == "multipart":
            return {"fields": {k: v[0] if len(v) == 1 else v for k, v in self.fields.items()},
                    "files": {k: f.describe() for k, f in self.files.items()}}
        if self.kind == "binary":
            return {"content_type": self.content_type, "size": len(self.raw),
                    "sha256": hashlib.sha256(self.raw).hexdigest()}
        return None


def parse_payload(content_type: str, body: bytes) -> Payload:
    media_type = content_type.split(";")[0].strip().lower()
    if not body:
        return Payload(kind="empty", content_type=media_type)
    if media_type == "application/json" or media_type.endswith("+json"):
        try:
            return Payload(kind="json", content_type=media_type, json=json.loads(body),
                           raw=body)
        except ValueError:
            return Payload(kind="binary", content_type=media_type, raw=body)
    if media_type == "application/x-www-form-urlencoded":
        fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        return Payload(kind="form", content_type=media_type, fields=fields, raw=body)
    if media_type == "multipart/form-data":
        return _multipart(content_type, body)
    return Payload(kind="binary", content_type=media_type, raw=body)


def _multipart(content_type: str, body: bytes) -> Payload:
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    payload = Payload(kind="multipart", content_type="multipart/form-data", raw=body)
    if not message.is_multipart():
        return payload
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):  # None for a nested multipart part
            data = b""
        filename = part.get_filename()
        if filename is not None:
            payload.files[str(name)] = Upload(filename=filename,
                                              content_type=part.get_content_type(), data=data)
        else:
            payload.fields.setdefault(str(name), []).append(data.decode("utf-8", "replace"))
    return payload


async def payload_of(request: Request) -> Payload:
    cached = request.scope.get("standin.payload")
    if cached is None:
        cached = parse_payload(request.headers.get("content-type", ""), await request.body())
        request.scope["standin.payload"] = cached
    return cached


def bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() in ("bearer", "oauth") and token else None


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers=headers)
