"""The web page and the API docs, served without any other origin (offline and firewalled deployments).

`/` (and `/index.html`) serve web/index.html, `/static/...` the rest of web/, `/vendor/...` the browser
libraries npm installed (scripts/setup.sh runs `npm ci`): no build step. `/docs` and `/redoc` are
FastAPI's pages with their Swagger UI and ReDoc assets taken from the `fastapi-offline` wheel. Every
page goes out with a Content-Security-Policy that lets it load from this origin only: ReDoc's bundle,
for one, would fetch a logo from its CDN, and markup slipped into a message could not run or fetch.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from api.http.errors import ApiError

ROOT = Path(__file__).resolve().parents[2]
WEB_DIR = ROOT / "web"
NODE_MODULES = ROOT / "node_modules"
DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"

# What the page may load from node_modules: its name under /vendor -> the library's browser build.
VENDOR_FILES = {
    "marked.js": "marked/lib/marked.umd.js",
    "purify.js": "dompurify/dist/purify.min.js",
}

PAGE_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
# The docs pages start their bundles with an inline script, and ReDoc styles itself inline.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; font-src 'self' data:; object-src 'none'; base-uri 'none'"
)

router = APIRouter(include_in_schema=False)


@router.get("/")
@router.get("/index.html")
async def index() -> FileResponse:
    return FileResponse(
        WEB_DIR / "index.html", headers={"Cache-Control": "no-cache", "Content-Security-Policy": PAGE_CSP}
    )


@router.get("/vendor/{name}")
async def vendor(name: str) -> FileResponse:
    if name not in VENDOR_FILES:
        raise ApiError(404, "not_found", f"no vendor file {name!r}")
    path = NODE_MODULES / VENDOR_FILES[name]
    if not path.is_file():
        raise ApiError(
            503,
            "web_libraries_missing",
            f"{VENDOR_FILES[name]} is not installed: run scripts/setup.sh (npm ci) in {ROOT}",
        )
    return FileResponse(path, media_type="text/javascript", headers={"Cache-Control": "no-cache"})


def _with_csp(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = DOCS_CSP
    return page


def _docs_page(
    request: Request, render: Callable[..., HTMLResponse], kind: str, **options: Any
) -> HTMLResponse:
    """A docs page of the app's OpenAPI schema; `*_url` options are paths on this server (behind any
    root path), the others are passed as they are."""
    root = request.scope.get("root_path", "")
    options = {name: f"{root}{value}" if name.endswith("_url") else value for name, value in options.items()}
    return _with_csp(
        render(
            openapi_url=f"{root}{request.app.openapi_url}", title=f"{request.app.title} - {kind}", **options
        )
    )


# What each docs page loads from this server (`*_url`: paths behind any root path), and its options.
SWAGGER_UI = {
    "oauth2_redirect_url": "/docs/oauth2-redirect",
    "swagger_js_url": "/docs-assets/swagger-ui-bundle.js",
    "swagger_css_url": "/docs-assets/swagger-ui.css",
    "swagger_favicon_url": "/static/favicon.svg",
    "swagger_ui_parameters": {"validatorUrl": None},  # no badge from swagger.io
}
REDOC = {
    "redoc_js_url": "/docs-assets/redoc.standalone.js",
    "redoc_favicon_url": "/static/favicon.svg",
    "with_google_fonts": False,
}


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    return _docs_page(request, get_swagger_ui_html, "Swagger UI", **SWAGGER_UI)


@router.get("/docs/oauth2-redirect")
async def swagger_ui_redirect() -> HTMLResponse:
    return _with_csp(get_swagger_ui_oauth2_redirect_html())


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    return _docs_page(request, get_redoc_html, "ReDoc", **REDOC)


def install_web(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    app.mount("/docs-assets", StaticFiles(directory=DOCS_ASSETS), name="docs-assets")
