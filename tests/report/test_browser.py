"""The report in a real browser: headless Chromium renders it with no broken image, no script
or resource error and no network access, and saves a screenshot.

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
                   ' errors=' + window.__errors;
});
</script>"""


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


def test_report_renders_in_chromium(full_report, tmp_path):
    html = full_report.path.read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("<head>", "<head>\n" + PROBE, 1))
    t0 = time.monotonic()
    res = _chromium(["--dump-dom", probe.as_uri()], tmp_path)
    render_s = time.monotonic() - t0
    assert res.returncode == 0, res.stderr[-2000:]
    m = re.search(r"<title>RENDERCHECK images=(\d+) broken=(\d+) errors=(\d+)</title>", res.stdout)
    assert m, f"probe did not run; stderr: {res.stderr[-2000:]}"
    images, broken, errors = map(int, m.groups())
    assert images >= 10 and broken == 0 and errors == 0, (images, broken, errors)
    console = [ln for ln in res.stderr.splitlines() if "CONSOLE" in ln and "probe.html" in ln]
    assert not console, console

    shot = full_report.path.with_name("report_screenshot.png")
    res = _chromium(["--screenshot=" + str(shot), "--window-size=1280,2000",
                     "--hide-scrollbars", full_report.path.as_uri()], tmp_path)
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size == (1280, 2000)
        # Something was drawn: the page is not a blank white screen.
        assert len(np.unique(np.asarray(im.convert("L")))) > 20
    print(f"report {full_report.size_bytes / 1e6:.2f} MB, built in {full_report.seconds:.1f} s, "
          f"chromium load+render {render_s:.1f} s, screenshot {shot}")


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
