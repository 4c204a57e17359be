"""The report in a real browser: headless Chromium renders it at 800 and 1400 px wide with no
broken image, no script, resource or console error, no network access and nothing wider than the
window, and saves a screenshot at each width.

Skips when Chromium is absent (Debian package ``chromium``; CI installs it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="chromium not installed (apt-get install -y chromium)")

#: Injected at the top of <head> of a test copy: counts errors (scripts, failed resources,
#: console.error) and, once loaded, writes image and error counts into the title.
PROBE = """<script>
window.__errors = 0;
window.addEventListener('error', function () { window.__errors++; }, true);
var __consoleError = console.error;
console.error = function () { window.__errors++; __consoleError.apply(console, arguments); };
window.addEventListener('load', function () {
  var imgs = document.images, broken = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (!imgs[i].complete || imgs[i].naturalWidth === 0) { broken++; }
  }
  document.title = 'RENDERCHECK images=' + imgs.length + ' broken=' + broken +
                   ' errors=' + window.__errors + ' width=' + window.innerWidth +
                   ' scroll=' + document.documentElement.scrollWidth;
});
</script>"""
#: Window widths (px) the report must fit: a narrow laptop window and a wide screen.
WIDTHS = (800, 1400)


def _chromium(args: list[str], tmp: Path, timeout_s: float = 90) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={tmp / 'profile'}",
             "--enable-logging=stderr", "--v=0",
             # Any attempt to reach another host fails (and is counted as a resource error).
             "--host-resolver-rules=MAP * ~NOTFOUND"]
    env = {**os.environ, "HOME": str(tmp)}
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True,
                          timeout=timeout_s, env=env)


def _render(html: str, tmp: Path, width: int) -> tuple[dict[str, int], str]:
    """Load ``html`` (with the probe) in a ``width`` px wide window: the probe's counts, stderr."""
    probe = tmp / f"probe_{width}.html"
    probe.write_text(html.replace("<head>", "<head>\n" + PROBE, 1))
    res = _chromium([f"--window-size={width},1000", "--dump-dom", probe.as_uri()], tmp)
    assert res.returncode == 0, res.stderr[-2000:]
    m = re.search(r"<title>RENDERCHECK (images=\d+ broken=\d+ errors=\d+ width=\d+ scroll=\d+)</title>",
                  res.stdout)
    assert m, f"probe did not run; stderr: {res.stderr[-2000:]}"
    counts = {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
    console = [ln for ln in res.stderr.splitlines() if "CONSOLE" in ln and probe.name in ln]
    assert not console, console
    return counts, res.stderr


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("report", ["full_report", "he_cd3_report"])
def test_report_renders_in_chromium(report, width, request, tmp_path):
    """No broken image, no script/resource/console error, and nothing wider than the window
    (wide tables scroll inside their box), at 800 and 1400 px; the H&E + CD3 report too."""
    info = request.getfixturevalue(report)
    t0 = time.monotonic()
    counts, _ = _render(info.path.read_text(), tmp_path, width)
    render_s = time.monotonic() - t0
    assert counts["images"] >= 10 and counts["broken"] == 0 and counts["errors"] == 0, counts
    # the viewport is the window (within a scrollbar), and the page is no wider than it
    assert width - 40 <= counts["width"] <= width and counts["scroll"] <= counts["width"], counts

    shot = tmp_path / f"report_{width}.png"
    res = _chromium([f"--screenshot={shot}", f"--window-size={width},2000",
                     "--hide-scrollbars", info.path.as_uri()], tmp_path)
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size == (width, 2000)
        # Something was drawn: the page is not a blank white screen.
        assert len(np.unique(np.asarray(im.convert("L")))) > 20
    print(f"{report} at {width} px: {info.size_bytes / 1e6:.2f} MB, built in {info.seconds:.1f} s, "
          f"chromium load+render {render_s:.1f} s, screenshot {shot}")


def test_probe_detects_overflow(tmp_path):
    """The width check can fail: a page with an unbreakable 1200 px element scrolls at 800 px."""
    page = "<!DOCTYPE html><html><head><title>x</title></head><body><div style=\"width:1200px\">w</div></body></html>"
    counts, _ = _render(page, tmp_path, 800)
    assert counts["scroll"] > counts["width"], counts


def test_probe_detects_a_broken_image(tmp_path):
    """The check can fail: an image that does not decode and a script error are both counted."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><head>" + PROBE + "<title>x</title></head><body>"
                    "<img src=\"data:image/png;base64,AAAA\">"
                    "<img src=\"https://example.invalid/x.png\">"
                    "<script>undefinedFunction();</script></body></html>")
    res = _chromium(["--dump-dom", page.as_uri()], tmp_path)
    m = re.search(r"RENDERCHECK images=(\d+) broken=(\d+) errors=(\d+)", res.stdout)
    assert m and m.groups() == ("2", "2", "3"), (m and m.groups(), res.stderr[-1500:])
