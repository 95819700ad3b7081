"""The web page: `/` (and `/index.html`) serve web/index.html, `/static/...` the rest of web/, and
`/vendor/...` the browser libraries npm installed (scripts/setup.sh runs `npm ci`), so the page loads
nothing from another origin and needs no build step."""

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from api.errors import ApiError

ROOT = Path(__file__).resolve().parents[2]
WEB_DIR = ROOT / "web"
NODE_MODULES = ROOT / "node_modules"

# What the page may load from node_modules: its name under /vendor -> the library's browser build.
VENDOR_FILES = {
    "marked.js": "marked/lib/marked.umd.js",
    "purify.js": "dompurify/dist/purify.min.js",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
@router.get("/index.html")
async def index() -> FileResponse:
    return FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})


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


def install_web(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
