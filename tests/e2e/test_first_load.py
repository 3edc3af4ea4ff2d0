"""The first load (issue 14) on the production build: files compressed at build and cached for good, pages
revalidated and never redirected, a stylesheet without what no page uses, a sign-in page that paints before the
websocket, and the Lighthouse benchmark (bench/first_load.py) still working against this build.

Run in the SQLite pass only: nothing here depends on the database, and the benchmark builds a second app."""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import PortalServer, url_of

pytestmark = [pytest.mark.e2e, pytest.mark.only_on("sqlite")]  # once: no database involved

ROOT = Path(__file__).resolve().parents[2]
IMMUTABLE = "public, max-age=31536000, immutable"


def get(portal: PortalServer, path: str, encodings: str = "br, gzip") -> http.client.HTTPResponse:
    """One request as a browser sends it, redirects not followed; the body is read (still compressed)."""
    connection = http.client.HTTPConnection(urlsplit(portal.url).netloc, timeout=30)
    connection.request("GET", path, headers={"Accept-Encoding": encodings})
    response = connection.getresponse()
    response.body = response.read()
    connection.close()
    return response


def decoded(response: http.client.HTTPResponse) -> str:
    import gzip

    assert response.getheader("content-encoding") == "gzip"
    return gzip.decompress(response.body).decode()


def test_pages_and_their_files_come_compressed_with_the_right_caching(portal: PortalServer) -> None:
    for path in ("/signin", "/licenses/new"):
        page = get(portal, path)
        assert page.status == 200, (path, page.status, page.getheader("location"))  # no redirect to path + "/"
        assert page.getheader("content-encoding") == "br" and page.getheader("cache-control") == "no-cache"
    html = decoded(get(portal, "/signin", "gzip"))
    files = sorted(set(re.findall(r'(?:href|src)="(/assets/[^"]+\.(?:js|css))"', html)))
    assert any(f.endswith(".css") for f in files) and any(f.endswith(".js") for f in files), html[:2000]
    for path in files:
        asset = get(portal, path)
        assert asset.status == 200 and asset.getheader("cache-control") == IMMUTABLE, path
        if len(asset.body) >= 256 or asset.getheader("content-encoding"):  # Reflex leaves tiny files as they are
            assert asset.getheader("content-encoding") == "br", path


def first_load_scripts(portal: PortalServer, path: str) -> str:
    """The JavaScript a page loads before it renders: the modules its HTML names and what they import, in turn."""
    html = decoded(get(portal, path, "gzip"))
    todo, seen, code = set(re.findall(r'(?:href|src)="(/assets/[^"]+\.js)"', html)), set(), []
    while todo:
        if (asset := todo.pop()) in seen:
            continue
        seen.add(asset)
        response = get(portal, asset, "gzip")
        assert response.status == 200, asset
        # Reflex leaves tiny files uncompressed.
        code.append(text := decoded(response) if response.getheader("content-encoding") else response.body.decode())
        todo.update(f"/assets/{name}" for name in re.findall(r'(?:from|import)\s*"\./([^"]+\.js)"', text))
    return "".join(code)


def test_the_charts_library_loads_on_the_chart_pages_only(portal: PortalServer) -> None:
    """Recharts (about 95 KB compressed) is in the Licenses and Billing pages' chunks, never in what the sign-in
    or Add License page loads."""
    for path in ("/licenses", "/billing"):
        assert "recharts-bar-rectangle" in first_load_scripts(portal, path), path
    for path in ("/signin", "/licenses/new"):
        assert "recharts" not in first_load_scripts(portal, path), path


def test_the_stylesheet_has_only_what_the_light_theme_and_the_pages_use(portal: PortalServer) -> None:
    html = decoded(get(portal, "/signin", "gzip"))
    css = "".join(decoded(get(portal, path, "gzip"))
                  for path in sorted(set(re.findall(r'href="(/assets/[^"]+\.css)"', html))))
    for used in (".rt-Button", ".rt-TextFieldRoot", ".rt-Card", "--indigo-9", "--red-9", "--slate-1", "data-accent-color"):
        assert used in css, used
    for unused in (".dark-theme", ".rt-ThemePanel", ".rt-Slider", "--tomato-9", "--lime-1", "data-accent-color='plum'"):
        assert unused not in css, unused
    assert len(css) < 450_000, f"the stylesheet is {len(css):,} characters"  # Radix's whole one is 800,000


def test_the_sign_in_page_paints_its_content_before_the_websocket(portal: PortalServer, anon_page: Page) -> None:
    html = decoded(get(portal, "/signin", "gzip"))
    for text in ("Sign in", "Remember me for 30 days", "Try the demo", "The demo account has employees"):
        assert text in html, text  # in the prerendered page, not added once the state arrives
    anon_page.goto(portal.url + "/signin")
    anon_page.get_by_role("button", name="Try the demo").click()
    expect(anon_page).to_have_url(url_of(portal, "/licenses"), timeout=30_000)


def test_the_first_load_benchmark_runs_in_its_quick_mode(portal: PortalServer) -> None:
    """bench/first_load.py against this build and a blank Reflex app it builds (the figures are not judged)."""
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "first_load.py"), "--quick",
                           "--portal-url", portal.url, "--portal-db", portal.env["REFLEX_DB_URL"]],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith(("| blank", "| portal"))]
    assert [row.split("|")[1].strip() for row in rows] == ["blank app /", "portal /signin",
                                                            "portal /licenses/new (signed in)"], done.stdout
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert 0 <= float(cells[2]) <= 100 and float(cells[3]) > 0 and int(cells[5]) > 0, row
