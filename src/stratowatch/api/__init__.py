"""The HTTP API (FastAPI): REST under ``/api/v1``, ``/health``, ``/metrics``, SSE and exports."""

from stratowatch.api.main import create_app

__all__ = ["create_app"]
