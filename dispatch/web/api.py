"""Serves the pages and their static assets, with a strict Content-Security-Policy."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from dispatch.core.errors import NotFound

STATIC_DIR = Path(__file__).parent / "static"
# A page is served once its file exists; the sign-in page sends each role to its own.
PAGES = ("console", "provider", "family", "manager")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
PAGE_HEADERS = {"Content-Security-Policy": CSP, "Cache-Control": "no-cache"}

router = APIRouter(include_in_schema=False)


def _page(name: str) -> FileResponse:
    path = STATIC_DIR / f"{name}.html"
    if not path.is_file():
        raise NotFound(f"page /{name} is not installed")
    return FileResponse(path, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


@router.get("/")
def sign_in() -> FileResponse:
    return _page("index")


def _register(name: str) -> None:
    @router.get(f"/{name}", name=f"page_{name}")
    def page() -> FileResponse:
        return _page(name)


for _name in PAGES:
    _register(_name)


def mount_static(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
