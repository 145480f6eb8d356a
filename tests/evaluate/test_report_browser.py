"""The run report in a real browser: headless Chromium at 1280 px renders it without anything wider than the page.

Chromium loads a copy of `report.html` (next to it, so its relative image paths resolve) with a probe script added
at the end of the body; once the page and its images have loaded, the script writes what it measured into the DOM,
which `--dump-dom` prints. Where Chromium is missing, the test installs Debian's `chromium` package when it may
(as root, or with passwordless sudo), else it is skipped with the reason.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from llava_adapt.evaluate.report import write_report
from tests.evaluate.report_run import build_report_run

WIDTH = 1280
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Measured after `load` (images decoded): the page's scroll width against the window's, every element whose box
# ends right of the window, and every block whose content spills out of it sideways (text that does not wrap).
PROBE = """<script>
window.addEventListener("load", () => {
  const page = document.documentElement, width = page.clientWidth, found = [];
  const name = (el) => el.tagName.toLowerCase() + (el.className ? "." + el.className : "")
    + " '" + (el.textContent || el.getAttribute("src") || "").trim().slice(0, 40) + "'";
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect(), style = getComputedStyle(el);
    if (box.right > width + 1) found.push(name(el) + " ends at " + Math.round(box.right) + " px");
    else if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1 && style.overflowX === "visible")
      found.push(name(el) + " spills: " + el.scrollWidth + " px of content in " + el.clientWidth + " px");
  }
  const images = [...document.images].map((img) => [img.getAttribute("src"), img.naturalWidth]);
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({scrollWidth: page.scrollWidth, clientWidth: width, found, images});
  document.body.appendChild(out);
});
</script>"""


def _may_install() -> bool:
    if shutil.which("apt-get") is None:
        return False
    if os.geteuid() == 0:
        return True
    if shutil.which("sudo") is None:
        return False
    return subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0


def _chromium() -> str:
    """A Chromium binary, installed with apt-get when missing and allowed; else the test is skipped."""
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if found:
        return found
    if not _may_install():
        pytest.skip("Chromium is not installed and cannot be (needs apt-get as root or passwordless sudo)")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
        result = subprocess.run(sudo + command, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            pytest.skip(f"Chromium could not be installed ({' '.join(command)}): {result.stderr.strip()[-300:]}")
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if found is None:
        pytest.skip("apt-get installed chromium but no chromium binary is on PATH")
    return found


def measure(browser: str, report: Path, width: int = WIDTH) -> dict[str, Any]:
    """Open `report` in headless Chromium with a `width`-px window; what the probe measured."""
    probe_page = report.with_name("report_probe.html")
    probe_page.write_text(report.read_text(encoding="utf-8").replace("</body>", PROBE + "\n</body>"), "utf-8")
    command = [browser, "--headless=new", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
               f"--window-size={width},900", "--virtual-time-budget=10000", "--dump-dom",
               probe_page.as_uri()]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    found = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout, re.S)
    assert found, f"the probe did not run (exit {result.returncode}): {result.stderr[-1000:]}"
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.slow
def test_the_report_fits_a_1280_px_window_in_chromium(tmp_path: Path) -> None:
    browser = _chromium()
    run = build_report_run(tmp_path / "run")
    page = measure(browser, write_report(run))
    assert page["clientWidth"] == WIDTH
    assert page["found"] == [], "\n".join(page["found"])
    assert page["scrollWidth"] <= page["clientWidth"]
    sources = [src for src, _ in page["images"]]
    assert "report/synthetic_metrics.png" in sources and "report/instruct_curves.png" in sources
    assert sum("/gallery/" in src for src in sources) == 8
    assert all(width > 0 for _, width in page["images"]), page["images"]  # every image loaded
