"""Fixtures for the browser tests: one live service (real Pipeline, SQLite, API on a free port)
fed the simulated episode, and one headless Chromium page on it that may reach only 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from console_helpers import LiveService, chromium_missing, launch_chromium, offline_page

from stratowatch.sim.scenario import Scenario, ScenarioConfig, generate_scenario
from stratowatch.weather import analytic_field


class FedService(LiveService):
    """The live service and how much of the episode it has been fed."""

    scenario: Scenario
    fed = 0

    def feed_until(self, fraction: float) -> None:
        end = round(fraction * len(self.scenario.scans))
        if end > self.fed:
            self.feed(self.scenario.scans[self.fed : end])
            self.fed = end


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return generate_scenario(ScenarioConfig(seed=1, duration_s=1200.0, n_aircraft=4))


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, scenario: Scenario) -> Iterator[FedService]:
    reason = chromium_missing()
    if reason:
        pytest.skip(reason)
    grid = analytic_field(t0_s=scenario.config.start_time_s - 6 * 3600.0, hours=96.0)
    svc = FedService(
        tmp_path_factory.mktemp("console"),
        sensors=scenario.sensors,
        winds=grid,
        settings={
            "predictions": {"enabled": True, "members": 12, "hours": 72.0, "every_s": 3600.0, "workers": 1},
            "partners": [{"id": "CAN", "releasable_to": ["CAN"]}],
        },
    )
    svc.scenario = scenario
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def browser(service: FedService) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        try:
            b = launch_chromium(p)
        except Exception as exc:  # the binary exists but cannot start here
            pytest.skip(f"chromium does not start: {exc}")
        yield b
        b.close()


@pytest.fixture(scope="module")
def console(service: FedService, browser: Any) -> Iterator[tuple[Any, list[str], list[str]]]:
    """The console page (loaded before any observation arrives), the URLs it tried outside
    127.0.0.1, and the page's script errors."""
    page, outside = offline_page(browser, service.url)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(service.login_url())  # signs in (session cookie) and lands on the console
    page.wait_for_function("window.stratowatch && window.stratowatch.state.ready === true", timeout=30_000)
    yield page, outside, errors
    page.close()
