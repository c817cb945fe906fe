#!/usr/bin/env python3
"""Render a run's report.html in headless Chromium and check that the page really shows its plots and tables.

    python scripts/render_report.py RUN_DIR_OR_REPORT [--out shot.png]

Writes a full-page screenshot and prints one JSON line: the screenshot path, its size, the pixel
variance (a blank page has none) and how many figures and tables the HTML holds. Exit 1 when the
screenshot is blank or the report lacks figures; exit 2 when Chromium is not installed
(Debian: apt-get install -y chromium).
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    return next((path for path in map(shutil.which, CHROMIUM_NAMES) if path), None)


def screenshot(report: Path, out: Path, width: int = 1200, height: int = 4000, timeout: int = 120) -> None:
    browser = find_chromium()
    if browser is None:
        raise FileNotFoundError("chromium not found (Debian: apt-get install -y chromium)")
    with tempfile.TemporaryDirectory() as profile:
        command = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={out}",
            report.resolve().as_uri(),
        ]
        subprocess.run(command, check=True, capture_output=True, timeout=timeout)


def pixel_stats(png: Path) -> dict:
    from PIL import Image, ImageStat

    image = Image.open(png).convert("L")
    stat = ImageStat.Stat(image)
    colours = len(Image.open(png).convert("RGB").getcolors(maxcolors=1 << 20) or [])
    return {"width": image.width, "height": image.height, "variance": stat.var[0], "colours": colours}


def check(report: Path, out: Path) -> dict:
    text = report.read_text(encoding="utf-8")
    screenshot(report, out)
    result = {
        "screenshot": str(out),
        **pixel_stats(out),
        "figures": len(re.findall(r"<img|<svg", text)),
        "tables": text.count("<table"),
    }
    result["ok"] = (
        result["variance"] > 100 and result["colours"] > 50 and result["figures"] >= 2 and result["tables"] >= 1
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", type=Path, help="a run folder or a report.html")
    parser.add_argument("--out", type=Path, default=None, help="screenshot path (default: next to the report)")
    args = parser.parse_args()
    report = args.target / "report.html" if args.target.is_dir() else args.target
    if not report.exists():
        print(f"error: {report} not found", file=sys.stderr)
        return 2
    try:
        result = check(report, args.out or report.with_name("report.png"))
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
