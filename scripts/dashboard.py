"""Make asv's published dashboard self-contained, point it at the project, and check it renders.

    python scripts/dashboard.py vendor HTML_DIR
        asv's index.html loads jQuery, flot, bootstrap and the rest from CDNs, so
        behind a proxy, or archived, the dashboard is blank.  This downloads the same
        libraries from the npm registry once (pinned versions, checked against their
        sha512 integrity, cached in .asv/vendor), copies them into HTML_DIR/vendor
        and points index.html at them.  It also sets the project's URL and commit
        links in HTML_DIR/index.json: FASTACT_PROJECT_URL and
        FASTACT_COMMIT_URL (a prefix the commit hash is appended to), by default
        derived from `git remote get-url origin` when that is a GitHub or GitLab
        address.

    python scripts/dashboard.py check HTML_DIR SCREENSHOT.png
        Serves HTML_DIR on 127.0.0.1, loads the summary grid and one benchmark's
        graph in headless Chromium (Debian's chromium), fails unless the grid lists
        the benchmarks and the graph has drawn its canvas, and saves a screenshot of
        each (SCREENSHOT.png and SCREENSHOT-graph.png).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".asv" / "vendor"

# CDN address in asv's index.html (a substring) -> (npm package, version, file in it, sha512 of the tarball)
LIBRARIES = {
    "jquery-3.3.1.min.js": ("jquery", "3.3.1", "dist/jquery.min.js",
                            "Ubldcmxp5np52/ENotGxlLe6aGMvmF4R8S6tZjsP6Knsaxd/xp3Zrh50cG93lR6nPXyUFwzN3ZSOQI0wRJNdGg=="),
    "flot/0.8.3/jquery.flot.min.js": ("flot", "0.8.3", "jquery.flot.js", None),
    "flot/0.8.3/jquery.flot.time.min.js": ("flot", "0.8.3", "jquery.flot.time.js", None),
    "flot/0.8.3/jquery.flot.selection.min.js": ("flot", "0.8.3", "jquery.flot.selection.js", None),
    "flot/0.8.3/jquery.flot.categories.min.js": ("flot", "0.8.3", "jquery.flot.categories.js", None),
    "flot-orderbars@1.0.0/js/jquery.flot.orderBars.js": ("flot-orderbars", "1.0.0", "js/jquery.flot.orderBars.js",
                                                         "Jv51fvzevUjNXEeozpwEKfPjhiZhfiJddv0WHjduUTCmSF+7T5K7C9c9Y1wIVmUhDBv5fLMjgbwKecT0GIKPZA=="),
    # cdnjs serves stupidtable 1.0.1; npm has the same plugin as stupid-table-plugin 1.1.3 (same API)
    "stupidtable/1.0.1/stupidtable.min.js": ("stupid-table-plugin", "1.1.3", "stupidtable.min.js",
                                             "2Vk7XouQPxUQPRe9w0Fu7ZZ8kHLK7rDoLMsCgtKxRNJ7f4dSOGvW9CkHsq5wD6QsaEnWoyLBYH3xOEsrK3yWBg=="),
    "blueimp-md5/2.19.0/js/md5.min.js": ("blueimp-md5", "2.19.0", "js/md5.min.js",
                                         "DRQrD6gJyy8FbiE4s+bDoXS9hiW3Vbx5uCdwvcCf3zLHL+Iv7LtGHLpr+GZV8rHG8tK766FGYBwRbu8pELTt+w=="),
    "bootstrap@3.1.1/dist/js/bootstrap.min.js": ("bootstrap", "3.1.1", "dist/js/bootstrap.min.js",
                                                 "TAzqS8E/ISpVHP29gYhy+1NSV+FJwApDVQhDfgLYsIuUDJiqJzH2DfORN5tiu+Ie2iBLrzEG34t4Rf465cigqg=="),
    "bootstrap@3.1.1/dist/css/bootstrap.min.css": ("bootstrap", "3.1.1", "dist/css/bootstrap.min.css", None),
}
FLOT_SHA512 = "xg2otcTJDvS+ERK+my4wxG/ASq90QURXtoM4LhacCq0jQW2jbyjdttbRNqU2cPykrpMvJ6b2uSp6SAgYAzj9tQ=="
REMOTE = re.compile(r'''<(?:script|link)\b[^>]*\b(src|href)="(https?://[^"]+)"''')  # resources, not <a> links


def _tarball(package: str, version: str, sha512: str) -> Path:
    """The package's npm tarball, downloaded once into CACHE and checked."""
    path = CACHE / f"{package}-{version}.tgz"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        url = f"https://registry.npmjs.org/{package}/-/{package}-{version}.tgz"
        with urllib.request.urlopen(url, timeout=120) as response:
            data = response.read()
        digest = base64.b64encode(hashlib.sha512(data).digest()).decode()
        if digest != sha512:
            raise SystemExit(f"{url}: sha512 {digest} is not the pinned {sha512}")
        path.write_bytes(data)
    return path


def _extract(package: str, version: str, member: str, sha512: str) -> bytes:
    with tarfile.open(_tarball(package, version, sha512)) as tar:
        return tar.extractfile(f"package/{member}").read()


def vendor(html: Path) -> None:
    index = html / "index.html"
    text = index.read_text()
    (html / "vendor").mkdir(exist_ok=True)
    for address, (package, version, member, sha512) in LIBRARIES.items():
        local = f"vendor/{package}-{version}-{Path(member).name}"
        (html / local).write_bytes(_extract(package, version, member, sha512 or FLOT_SHA512))
        pattern = re.compile(r'(src|href)="https?://[^"]*' + re.escape(address) + r'"[^>]*?(\s*/?>)')
        text, count = pattern.subn(lambda m: f'{m.group(1)}="{local}"{m.group(2)}', text)
        if count != 1:
            raise SystemExit(f"{index}: expected one reference to {address}, found {count} (a newer asv?)")
    left = REMOTE.findall(text)
    if left:
        raise SystemExit(f"{index} still loads {[url for _, url in left]} from the network")
    index.write_text(text)
    _set_project_links(html / "index.json")


def _default_links() -> tuple[str, str]:
    try:
        origin = subprocess.run(["git", "-C", str(ROOT), "remote", "get-url", "origin"], capture_output=True,
                                text=True, check=True).stdout.strip()
    except (subprocess.CalledProcessError, OSError):
        return "", ""
    match = re.match(r"(?:https://|git@)(github\.com|gitlab\.com)[:/](.+?)(?:\.git)?$", origin)
    if not match:
        return "", ""
    url = f"https://{match.group(1)}/{match.group(2)}"
    return url, f"{url}/commit/"


def _set_project_links(index_json: Path) -> None:
    project_url, commit_url = _default_links()
    project_url = os.environ.get("FASTACT_PROJECT_URL", project_url)
    commit_url = os.environ.get("FASTACT_COMMIT_URL", commit_url)
    data = json.loads(index_json.read_text())
    if project_url:
        data["project_url"] = project_url
    if commit_url:
        data["show_commit_url"] = commit_url
    index_json.write_text(json.dumps(data))
    print(f"project_url: {data.get('project_url')!r}, commit links: {data.get('show_commit_url')!r}")


@contextlib.contextmanager
def _serve(html: Path):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(html)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit("no chromium: apt-get install chromium")


def _render(url: str, screenshot: Path | None) -> str:
    """The DOM after the page's scripts ran (and a screenshot), from headless Chromium."""
    base = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--window-size=1280,900", "--virtual-time-budget=15000"]
    if screenshot is not None:
        subprocess.run(base + [f"--screenshot={screenshot}", url], check=True, capture_output=True, timeout=180)
    return subprocess.run(base + ["--dump-dom", url], check=True, capture_output=True, text=True,
                          timeout=180).stdout


def check(html: Path, screenshot: Path) -> None:
    index = json.loads((html / "index.json").read_text())
    benchmarks = sorted(index["benchmarks"])
    if not benchmarks:
        raise SystemExit("index.json lists no benchmarks")
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    with _serve(html) as root:
        dom = _render(f"{root}/index.html", screenshot)
        if "Can not determine continental origin of swallow" in dom:
            raise SystemExit("the dashboard could not load its scripts")
        shown = [name for name in benchmarks if name in dom]
        if len(shown) < min(5, len(benchmarks)):
            raise SystemExit(f"the summary grid shows {len(shown)} of {len(benchmarks)} benchmarks")
        graph = next(name for name in benchmarks if not index["benchmarks"][name].get("params"))
        graph_shot = screenshot.with_name(screenshot.stem + "-graph" + screenshot.suffix)
        dom = _render(f"{root}/index.html#{graph}", graph_shot)
        if 'class="flot-base"' not in dom:
            raise SystemExit(f"the graph of {graph} did not render (no flot canvas)")
    print(f"dashboard renders: {len(shown)} benchmarks in the grid, the graph of {graph}; "
          f"screenshots {screenshot} and {graph_shot}")


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "vendor":
        vendor(Path(argv[1]))
    elif len(argv) == 3 and argv[0] == "check":
        check(Path(argv[1]), Path(argv[2]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
