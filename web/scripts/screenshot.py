#!/usr/bin/env python3
"""docs/console.png: the console of a running ``stratowatch demo`` with a balloon selected.

    .venv/bin/stratowatch demo --port 8765 &        # then, once a balloon has a prediction:
    .venv/bin/python web/scripts/screenshot.py --url http://127.0.0.1:8765/ --out docs/console.png

Headless Debian Chromium (Playwright, /usr/bin/chromium); the page may reach only the service.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "web"))

from console_helpers import launch_chromium, offline_page

PREDICTED = """async () => {
  const s = window.stratowatch.state;
  for (const t of s.tracks.values()) {
    if (t.classification?.label !== 'balloon') continue;
    const r = await fetch('api/v1/predictions/' + t.track_id);
    if (r.ok && !(await r.json()).error) return t.track_id;
  }
  return null;
}"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:8765/")
    ap.add_argument("--out", type=Path, default=Path("docs/console.png"))
    ap.add_argument("--wait", type=float, default=300.0, help="seconds to wait for a predicted balloon")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        page, outside = offline_page(browser, args.url, viewport=(1600, 950))
        page.goto(args.url)
        page.wait_for_function(
            "window.stratowatch && window.stratowatch.state.ready === true", timeout=60_000
        )
        deadline = time.monotonic() + args.wait
        tid = None
        while tid is None and time.monotonic() < deadline:
            tid = page.evaluate(PREDICTED)
            if tid is None:
                time.sleep(2.0)
        if tid is None:
            sys.exit("screenshot: no balloon with a prediction yet")
        page.click(f"#track-list [data-track='{tid}']")
        page.wait_for_function(
            "async () => (await window.stratowatch.map.getSource('prediction').getData()).features.length > 0"
        )
        page.wait_for_timeout(2500)  # the map eases to the balloon, the tiles settle
        args.out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.out))
        browser.close()
        if outside:
            sys.exit(f"screenshot: the page tried to reach {outside}")
        print(f"{args.out}: track {tid}")


if __name__ == "__main__":
    main()
