"""The analyst's web console: the built front end (``static/``), served by the API at ``/``.

The files are built from ``web/`` in the repository (``cd web && npm ci && npm run build``) and
committed, so installing the package needs no npm. ``static/`` holds ``index.html``, the
bundle ``console.js``/``console.css`` (MapLibre GL JS included) and the offline base map
``land.json``, ``borders.json``, ``states.json`` (GeoJSON built from Natural Earth and US Census
data, cut at the antimeridian).
"""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"


def static_dir() -> Path:
    """The directory of the built console files."""
    return STATIC_DIR


def static_files() -> dict[str, Path]:
    """The console's files by name (flat: the build writes no subdirectories)."""
    if not STATIC_DIR.is_dir():
        return {}
    return {p.name: p for p in sorted(STATIC_DIR.iterdir()) if p.is_file()}
