"""The analyst's console: the page at ``/``, its files under ``/static/``, and what the viewer
is cleared to see (``/api/v1/console/whoami``, for the releasability banner).

The clearance comes from the node's configured partners (``[[partners]]``): the banner reads
"REL TO" and the partners and releasability labels this node shares with, or "PUBLIC RELEASE"
when it shares with none. The partners/auth work replaces it with the authenticated viewer's.
"""

from __future__ import annotations

import mimetypes
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, JSONResponse

from stratowatch.api.deps import get_pipeline
from stratowatch.api.errors import not_found
from stratowatch.web import static_files

router = APIRouter(tags=["console"])

_FILES = static_files()
_MEDIA = {".json": "application/json", ".js": "text/javascript", ".css": "text/css", ".html": "text/html"}


def _media_type(name: str) -> str:
    suffix = name[name.rfind(".") :] if "." in name else ""
    return _MEDIA.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    page = _FILES.get("index.html")
    if page is None:
        raise not_found("console page", "index.html")
    return FileResponse(page, media_type="text/html", headers={"Cache-Control": "no-cache"})


@router.get("/static/{name}", include_in_schema=False)
async def static(name: str) -> FileResponse:
    """One built file of the console (the names are fixed at start-up: no path is ever joined)."""
    path = _FILES.get(name)
    if path is None:
        raise not_found("console file", name)
    return FileResponse(path, media_type=_media_type(name), headers={"Cache-Control": "no-cache"})


def clearance(settings: Any) -> list[str]:
    """The partners and releasability labels this node shares with, sorted (PUBLIC left out)."""
    labels: set[str] = set()
    for partner in getattr(settings, "partners", None) or ():
        labels.add(str(partner.id))
        labels.update(str(label) for label in partner.releasable_to)
    labels.discard("PUBLIC")
    return sorted(labels)


@router.get("/api/v1/console/whoami", summary="What the console viewer is cleared to see")
async def whoami(pipeline: Annotated[Any, Depends(get_pipeline)]) -> JSONResponse:
    """``{"releasable_to": [...], "banner": "REL TO CAN, USA"}``: the labels the viewer may see
    (always PUBLIC, plus the configured partners' ids and labels) and the banner text."""
    labels = clearance(getattr(pipeline, "settings", None))
    banner = f"REL TO {', '.join(labels)}" if labels else "PUBLIC RELEASE"
    return JSONResponse({"releasable_to": ["PUBLIC", *labels], "banner": banner})
