"""Run localstripe (a fake Stripe server, test-only) on 127.0.0.1 with its disk persistence off.

localstripe's own command listens on every interface and pickles its whole store to one fixed file in
the system temp folder after every write: slower as data grows, and shared by every instance on the
machine. This launcher keeps the store in memory only and binds loopback:

    python -m tests.support.localstripe_server --port 8420
"""

from __future__ import annotations

import argparse
import logging


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
