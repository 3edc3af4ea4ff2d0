"""Run localstripe (a fake Stripe server, test-only) on 127.0.0.1 with its disk persistence off.

localstripe's own command listens on every interface and pickles its whole store to one fixed file in
the system temp folder after every write: slower as data grows, and shared by every instance on the
machine. This launcher keeps the store in memory only and binds loopback:

    python -m tests.support.localstripe_server --port 8420
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
KEY = "sk_test_localstripe"


def _answers(url: str) -> bool:
    request = urllib.request.Request(f"{url}/v1/customers", headers={"Authorization": f"Bearer {KEY}"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def running_localstripe() -> Iterator[str]:
    """localstripe on 127.0.0.1 and a free port, in memory only; yields its URL and stops it afterwards."""
    from tests.support.postgres import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([sys.executable, "-m", "tests.support.localstripe_server", "--port", str(port)],
                                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while not _answers(url):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"localstripe did not start:\n{log.read().decode()[-3000:]}")
                time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def serve(port: int) -> None:
    from aiohttp import web
    from localstripe.resources import store
    from localstripe.server import app

    # `Store` calls `self.dump_to_disk()` on every change and the server's middleware calls it after each
    # write: an instance attribute shadows the method for both.
    store.dump_to_disk = lambda: None
    logging.basicConfig(level=logging.WARNING)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    serve(parser.parse_args().port)


if __name__ == "__main__":
    main()
