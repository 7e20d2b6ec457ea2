"""Security headers on every HTTP answer (pages, static files, API answers, errors), and the strict
Content-Security-Policy on every page: no inline script, no framing, nothing from elsewhere."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from dispatch.core.middleware import SECURITY_HEADERS
from dispatch.web.api import PAGES, STATIC_DIR

PATHS = ["/", *(f"/{p}" for p in PAGES), "/api/me", "/api/nothing-here", "/healthz", "/openapi.json"]
PATHS += [f"/static/{f.name}" for f in sorted(STATIC_DIR.iterdir()) if f.suffix in {".js", ".css"}][:3]


@pytest.mark.parametrize("path", PATHS)
def test_every_answer_carries_the_security_headers(client: TestClient, path: str) -> None:
    response = client.get(path)
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (path, name, response.status_code)


INSTALLED = ["", *(p for p in PAGES if (STATIC_DIR / f"{p}.html").is_file())]


@pytest.mark.parametrize("page", INSTALLED)
def test_pages_have_a_strict_csp(client: TestClient, page: str) -> None:
    response = client.get(f"/{page}")
    assert response.status_code == 200
    csp = dict(part.strip().split(" ", 1) for part in response.headers["content-security-policy"].split(";"))
    assert csp["script-src"] == "'self'" and "unsafe" not in csp["script-src"]
    assert csp["default-src"] == "'self'" and csp["frame-ancestors"] == "'none'"
    assert csp["connect-src"] == "'self'" and csp["base-uri"] == "'none'"
    assert "<script>" not in response.text  # every script is a file served by the API
