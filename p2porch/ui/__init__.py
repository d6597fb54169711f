"""The web UI's static shell, served by the daemon on the TLS API port (shell).

Owns the routes ``/`` and ``/ui`` (redirects to ``/ui/``), ``/ui/`` (the page) and ``/ui/NAME`` (its
script, style sheet and icon). The assets ship inside the package (``p2porch/ui/static``), are read
once into memory and are served without authentication: they hold no data. Everything the page
shows comes from the authenticated ``/v1`` API with the access token the user typed (kept in the
browser's sessionStorage, sent as a bearer header, never in a URL). Every response carries a strict
Content-Security-Policy (scripts, styles and fetches from this origin only, no inline script, no
framing). It never reads a file outside the static directory and knows nothing of the cluster.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

__all__ = ["PUBLIC_PATHS", "PUBLIC_PREFIXES", "SECURITY_HEADERS", "load_assets", "ui_routes"]

PUBLIC_PREFIXES = ("/ui/",)  # served without a token (the static shell only)
PUBLIC_PATHS = ("/", "/ui")  # exact paths served without a token (redirects)

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-cache",
}
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


def load_assets() -> dict[str, tuple[bytes, str]]:
    """``name -> (content, media type)`` of every asset in the package's static directory."""
    from importlib import resources  # here: a daemon without the TLS API port never serves the UI

    assets: dict[str, tuple[bytes, str]] = {}
    for entry in resources.files(__package__).joinpath("static").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in _TYPES:
            assets[entry.name] = (entry.read_bytes(), _TYPES[suffix])
    return assets


def ui_routes() -> list[BaseRoute]:
    """``/`` and ``/ui`` redirect to ``/ui/``; ``/ui/`` is the page; ``/ui/NAME`` one of its assets."""
    assets = load_assets()

    def asset(name: str) -> Response:
        found = assets.get(name)
        if found is None:
            return Response("not found\n", status_code=404, media_type="text/plain", headers=SECURITY_HEADERS)
        content, media_type = found
        return Response(content, media_type=media_type, headers=SECURITY_HEADERS)

    async def index(_: Request) -> Response:
        return asset("index.html")

    async def named(request: Request) -> Response:
        return asset(request.path_params["name"])

    async def to_ui(_: Request) -> Response:
        return RedirectResponse("/ui/", status_code=302, headers=SECURITY_HEADERS)

    return [
        Route("/", to_ui, methods=["GET"]),
        Route("/ui", to_ui, methods=["GET"]),
        Route("/ui/", index, methods=["GET"]),
        Route("/ui/{name}", named, methods=["GET"]),
    ]
