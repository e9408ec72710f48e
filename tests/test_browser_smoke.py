"""Smoke test of the browser set-up: Chromium opens a page served on 127.0.0.1 and a
click changes the DOM."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytestmark = pytest.mark.slow

PAGE = b"""<!doctype html>
<html lang="de"><head><meta charset="utf-8"><title>Newsroom</title></head>
<body>
  <p id="status">Entwurf</p>
  <button id="approve" type="button">Freigeben</button>
  <script>
    document.getElementById("approve").addEventListener("click", () => {
      document.getElementById("status").textContent = "Freigegeben";
    });
  </script>
</body></html>
"""


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: object) -> None:  # keep the test output quiet
        pass


@pytest.fixture
def page_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_chromium_clicks_a_button(browser, page_url: str) -> None:
    page = browser.new_page()
    try:
        page.goto(page_url)
        assert page.text_content("#status") == "Entwurf"
        page.click("#approve")
        page.wait_for_function(
            "document.getElementById('status').textContent === 'Freigegeben'")
        assert page.text_content("#status") == "Freigegeben"
    finally:
        page.close()
