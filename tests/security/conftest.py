"""The security tests reuse the approval, request and flow tests' helpers (their catalog with
test campaigns, forms, images): their folders join the import path here."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
for helpers in ("approval", "requests_office", "orchestration"):
    if str(TESTS / helpers) not in sys.path:
        sys.path.insert(0, str(TESTS / helpers))
