"""A live service for the browser tests and the console bench: a real Pipeline over a temporary
SQLite store, the API (uvicorn) on a free loopback port in a thread, and headless Chromium
(Debian's, driven by Playwright; no browser is ever downloaded)."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn

from stratowatch.api import create_app
from stratowatch.config import load_settings
from stratowatch.model import Observation, Sensor
from stratowatch.service.pipeline import Pipeline
from stratowatch.store import open_store
from stratowatch.store.scoped import ScopedStore
from stratowatch.weather.grid import WindGrid

CHROMIUM = "/usr/bin/chromium"
#: Software WebGL (SwiftShader): MapLibre needs WebGL, the test machines have no GPU.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--ignore-gpu-blocklist",
]


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; no browser download needed)"
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        return "Debian chromium is not installed (apt-get install chromium)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveService:
    """Pipeline + API on ``http://127.0.0.1:<port>/``; ``feed`` runs pipeline steps."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        sensors: dict[str, Sensor] | None = None,
        winds: WindGrid | None = None,
        settings: dict[str, Any] | None = None,
    ) -> None:
        base: dict[str, Any] = {
            "store_url": f"sqlite:///{tmp_path / 'console.db'}",
            "predictions": {"enabled": winds is not None},
        }
        base.update(settings or {})
        self.settings = load_settings(None, env={}, **base)
        self.raw_store = open_store(self.settings.store_url)
        self.pipeline = Pipeline(self.settings, self.raw_store, winds=winds, sensors=sensors)
        #: what the node's own people see (its own picture; partners' pictures are kept apart)
        self.store = ScopedStore(self.raw_store, "")
        self.app = create_app(self.pipeline, heartbeat_s=1.0, picture_ttl_s=0.0, freeze_gc=False)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="console-api", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30.0
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the API did not start")
            time.sleep(0.02)

    def login_url(self, principal_id: str = "console-admin") -> str:
        """A one-time sign-in link for an admin of the node (created when missing), as
        ``stratowatch serve`` prints one: opening it sets the console's session cookie."""
        from stratowatch.cli.auth import login_link

        authority = self.app.state.authority
        if authority.record(principal_id) is None:
            authority.create_principal(principal_id, authority.node_partner, "user", ["admin"])
        return login_link(authority, principal_id, self.url)

    def feed(self, scans: Sequence[tuple[float, Sequence[Observation]]]) -> None:
        for t, obs in scans:
            self.pipeline.process(t, obs)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10.0)
        self.pipeline.close()
        self.raw_store.close()


def launch_chromium(playwright: Any, **kw: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, **kw)


def offline_page(
    browser: Any, base_url: str, *, viewport: tuple[int, int] = (1400, 860)
) -> tuple[Any, list[str]]:
    """A page that may reach only 127.0.0.1: every other request is aborted and recorded."""
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    outside: list[str] = []

    def route(r: Any) -> None:
        url = r.request.url
        if url.startswith(("http://127.0.0.1:", "data:", "blob:")):
            r.continue_()
        else:
            outside.append(url)
            r.abort()

    page.route("**/*", route)
    return page, outside
