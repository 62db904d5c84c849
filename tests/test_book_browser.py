"""The rendered book as a reader meets it: built with every chapter executed, served on 127.0.0.1,
every page loaded in headless Chromium. Each page must have its figures (non-empty images), no error
tracebacks, working internal links, and math rendered offline by the bundled MathJax (no CDN).
A screenshot of every page is kept in _build/screenshots/ for humans to look at.

Legibility, measured in the rendered page (a script the test server adds to every page writes what
it measured into the DOM): no listing is cut off (a printed output wraps at the column, a source
`pre` wider than its box scrolls, and no ancestor clips either), and every graph drawing
(`img.graph-drawing`) is shown large enough that its labels are at least 10 CSS pixels high.

The build itself (every chapter executed, a raising cell fails it) is a test with or without a browser: it is
where `make test` runs the chapters. The page checks need Debian's `chromium` (.ci/run installs it); without it
they are skipped, saying so.
"""

import functools
import http.server
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path

import pytest

from mlc_lab.viz.graph import DPI, LABEL_PT, MIN_LABEL_PX

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--virtual-time-budget=15000",
]
#: figures each chapter shows (plots and drawings, as <img> in the page)
MIN_FIGURES = {
    "01_ir": 1, "02_fusion": 3, "03_layout": 4, "04_tensor_programs": 1, "05_tuning": 2, "06_accelerators": 4,
    "09_performance": 1,
}
MATH_PAGES = {"05_tuning", "06_accelerators"}

#: pages whose graph drawings the legibility rule must find (so the rule cannot pass by finding none)
DRAWING_PAGES = {"01_ir", "02_fusion"}
#: measured after the page loaded: listings whose content is cut, and every image's natural and shown width
PROBE = b"""<script>
window.addEventListener("load", () => {
  const cut = [];
  for (const pre of document.querySelectorAll("pre")) {
    const style = getComputedStyle(pre);
    const wide = pre.scrollWidth > pre.clientWidth + 1;
    // a printed output (IR, kernel) must wrap, so all of it shows; a source cell may scroll instead
    const printed = pre.closest(".cell_output, .output") !== null;
    let hidden = wide && (printed || !["auto", "scroll"].includes(style.overflowX));
    const right = pre.getBoundingClientRect().right;
    for (let up = pre.parentElement; up && up !== document.body && !hidden; up = up.parentElement) {
      const clip = ["hidden", "clip"].includes(getComputedStyle(up).overflowX);
      hidden = clip && right > up.getBoundingClientRect().right + 1;
    }
    if (hidden) cut.push(pre.textContent.trim().slice(0, 80));
  }
  const drawings = [...document.querySelectorAll("img.graph-drawing")].map(
    (img) => [img.getAttribute("src"), img.naturalWidth, img.getBoundingClientRect().width]);
  const out = document.createElement("script");
  out.type = "application/json";
  out.id = "legibility";
  out.textContent = JSON.stringify({cut: cut, drawings: drawings});
  document.body.appendChild(out);
});
</script>"""


class ProbingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the built site, with PROBE added to every HTML page."""

    def send_head(self):
        path = Path(self.translate_path(self.path))
        if path.suffix != ".html" or not path.is_file():
            return super().send_head()
        data = path.read_bytes().replace(b"</body>", PROBE + b"</body>", 1)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        return io.BytesIO(data)

    def log_message(self, *args):
        pass


needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def site():
    build = subprocess.run([sys.executable, "-m", "mlc_lab.cli", "book"], cwd=ROOT, capture_output=True, text=True)
    assert build.returncode == 0, f"the book build failed:\n{build.stdout[-3000:]}\n{build.stderr[-3000:]}"
    handler = functools.partial(ProbingHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def chromium(*args: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120
        )
    return out.stdout


@functools.cache
def dump_dom(url: str) -> str:
    """The page's DOM after its scripts ran, at the screenshot's width (cached: two tests read it)."""
    return chromium("--window-size=1280,1000", "--dump-dom", url)


def pages() -> list[str]:
    """Every content page: front matter and chapters (the root index.html only redirects to the intro)."""
    return sorted(str(p.relative_to(HTML)) for folder in ("book", "chapters") for p in (HTML / folder).glob("*.html"))


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def test_the_book_builds_with_every_chapter_executed(site):
    """The build (`-W`, `raise_on_error`) is where the chapters run as tests: `make test-notebooks` runs only
    the solutions, so this must hold with or without a browser."""
    built = {p.removesuffix(".html") for p in pages() if p.startswith("chapters/")}
    assert built == {f"chapters/{c.stem}" for c in (ROOT / "chapters").glob("*.md")}


@needs_chromium
def test_every_page_renders_with_figures_links_and_offline_math(site):
    shots = ROOT / "_build" / "screenshots"
    shots.mkdir(exist_ok=True)
    assert "book/intro.html" in fetch(f"{site}/index.html").decode(), "index.html must lead to the intro"
    chapters = [p for p in pages() if p.startswith("chapters/")]
    listed = sorted(f"{Path(c).stem}.html" for c in ROOT.joinpath("chapters").glob("[0-9][0-9]_*.md"))
    assert [Path(c).name for c in chapters] == listed, f"expected every chapter in the built site, found {chapters}"
    for page in pages():
        url = f"{site}/{page}"
        dom = dump_dom(url)
        assert "<body" in dom, f"{page}: Chromium returned no page"
        assert "Traceback (most recent call last)" not in dom, f"{page}: an error traceback is in the output"
        stem = Path(page).stem
        images = re.findall(r'<img[^>]+src="([^"]+)"', dom)
        for src in images:
            if not src.startswith("data:"):
                assert len(fetch(f"{site}/{Path(page).parent.as_posix()}/{src}".replace("/./", "/"))) > 500, (
                    f"{page}: empty image {src}"
                )
        assert len([s for s in images if "logo" not in s]) >= MIN_FIGURES.get(stem, 0), f"{page}: figures missing"
        for href in set(re.findall(r'<a[^>]+href="([^"#:]+\.html)(?:#[^"]*)?"', dom)):
            target = (HTML / Path(page).parent / href).resolve()
            assert target.exists(), f"{page}: link {href} leads nowhere"
        external_scripts = re.findall(r'<script[^>]+src="(https?://[^"]+)"', dom)
        assert not external_scripts, f"{page}: loads scripts from the network: {external_scripts}"
        if stem in MATH_PAGES:
            assert "<mjx-container" in dom, f"{page}: math was not rendered (MathJax must load from _static)"
        chromium("--window-size=1280,1600", f"--screenshot={shots / (stem + '.png')}", url)
        assert (shots / f"{stem}.png").stat().st_size > 10_000, f"{page}: blank screenshot"


def legibility(dom: str) -> dict:
    found = re.search(r'<script type="application/json" id="legibility">(.*?)</script>', dom, re.S)
    assert found, "the legibility probe did not run (no #legibility in the page)"
    return json.loads(found.group(1))


@needs_chromium
def test_listings_are_not_cut_and_graph_labels_are_readable(site):
    label_px = LABEL_PT * DPI / 72  # a label's height in a drawing's own pixels (drawn 1:1 at DPI)
    for page in pages():
        stem = Path(page).stem
        measured = legibility(dump_dom(f"{site}/{page}"))
        assert not measured["cut"], f"{page}: listings cut off instead of wrapping or scrolling: {measured['cut'][:3]}"
        if stem in DRAWING_PAGES:
            assert measured["drawings"], f"{page}: no graph drawing (img.graph-drawing) found"
        for src, natural, shown in measured["drawings"]:
            px = label_px * shown / max(natural, 1)
            assert px >= MIN_LABEL_PX, f"{page}: drawing {src} is shown at {shown:.0f}/{natural} px: labels {px:.1f} px"
