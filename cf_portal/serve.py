"""The production server: `python -m cf_portal.serve [--workers N] [--port P] [--host H] [--no-build]`.

It is `reflex run --env prod` (the frontend built and served by the backend on one port, through Granian) with
two differences: a backend worker that dies (killed, out of memory, a crash in native code) is started again,
and the other workers keep serving meanwhile. Reflex's own command stops the whole app when any worker exits
("Unexpected exit from worker-1", then "Reflex app stopped").

Reflex builds its Granian server inside `reflex.utils.exec.run_granian_backend_prod` with no way to pass
Granian's `respawn_failed_workers`; it looks the server class up in `granian.server` when it starts, so the class
is swapped there for one that turns the option on. Granian still gives up (and the app exits, for systemd or
the container runtime to restart it) when a worker dies again within seconds of being respawned: a crash loop.

The other difference: the start-up check of the database's schema is the project's (`check_schema_at_start`).

Several workers share the visitors' state through Redis (REFLEX_REDIS_URL): without it each worker would hold
its own and a tab would lose its state whenever the next event reached another worker, so more than one worker
without Redis is refused.

Several app processes (behind nginx, deploy/nginx/) share PostgreSQL and Redis like the workers of one process
do. On one machine they run from one checkout: one process builds the frontend (the plain command), the others
start with `--no-build` and serve that build (Reflex's backend-only mode with the built frontend mounted, as the
full command mounts it), so no second build rewrites .web/build while the first process serves from it.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from cf_portal.settings import get_settings

WORKERS_VARIABLE = "GRANIAN_WORKERS"  # the variable Reflex's production server reads, kept as the default


def enable_worker_respawn() -> None:
    """Make the Granian server Reflex starts respawn a worker that exits unexpectedly."""
    import granian.server

    server_class = granian.server.Server
    if getattr(server_class, "cf_portal_respawns", False):
        return

    class RespawningServer(server_class):  # type: ignore[misc, valid-type]
        cf_portal_respawns = True

        def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
            kwargs["respawn_failed_workers"] = True
            super().__init__(*args, **kwargs)

    granian.server.Server = RespawningServer


def check_schema_at_start() -> None:
    """Reflex's start-up check of the database (`prerequisites.check_schema_up_to_date`), with the project's
    comparison: Reflex's own compares the models with the database without alembic/env.py's filter, so it
    always reported the search index the models cannot declare ("Detected database schema changes", an error
    at every start, and so one nobody would notice when it was true)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from cf_portal.cli import alembic_config
    from cf_portal.db import make_engine, schema_differences

    log = logging.getLogger("cf_portal.serve")
    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    # An engine of its own, disposed of: this runs in the process that forks the workers, and a pooled
    # connection left here would be shared by every worker (on PostgreSQL: "prepared statement already exists").
    engine = make_engine(get_settings().database_url)
    try:
        with engine.connect() as connection:
            if set(MigrationContext.configure(connection).get_current_heads()) != heads:
                log.error("The database is not at the newest migration: run `python -m cf_portal.cli migrate`.")
                return
            if differences := schema_differences(connection):
                log.error("The models and the database's schema differ (%s changes): write a migration "
                          "(README, Schema changes).", len(differences))
    finally:
        engine.dispose()


def built_frontend() -> Path:
    """The folder of the built frontend that the backend serves (`.web/build/client`)."""
    from reflex.constants import Dirs
    from reflex.utils import prerequisites

    return prerequisites.get_web_dir() / Dirs.STATIC


def serve_built_frontend() -> None:
    """Make Reflex's backend-only production server mount the frontend built by an earlier start."""
    from reflex.utils import exec as reflex_exec

    run_backend_prod = reflex_exec.run_backend_prod
    if getattr(run_backend_prod, "cf_portal_mounts_frontend", False):
        return

    def run_backend_prod_with_frontend(host: str, port: int, loglevel: object, *_: object) -> None:
        run_backend_prod(host, port, loglevel, mount_frontend_compiled_app=True)

    run_backend_prod_with_frontend.cf_portal_mounts_frontend = True  # type: ignore[attr-defined]
    reflex_exec.run_backend_prod = run_backend_prod_with_frontend


def _workers(value: str) -> int:
    try:
        workers = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of workers") from None
    if not 1 <= workers <= 64:
        raise argparse.ArgumentTypeError("the number of workers must be between 1 and 64")
    return workers


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    settings = get_settings()
    parser = argparse.ArgumentParser(
        prog="python -m cf_portal.serve",
        description="Build the frontend and serve cf_portal in production mode (Granian, workers respawned).")
    parser.add_argument("--workers", type=_workers, default=os.environ.get(WORKERS_VARIABLE, "1"),
                        help=f"backend worker processes (default: ${WORKERS_VARIABLE} or 1); more than one "
                             "needs REFLEX_REDIS_URL")
    parser.add_argument("--port", type=int, default=settings.port,
                        help="the port of the frontend and the backend (default: CF_PORT, 3000)")
    parser.add_argument("--host", default="0.0.0.0",
                        help="the address to listen on (default 0.0.0.0; 127.0.0.1 behind a proxy on this machine)")
    parser.add_argument("--no-build", action="store_true",
                        help="serve the frontend an earlier start built in this checkout instead of building it "
                             "(a second app process on this machine, beside the one that builds)")
    args = parser.parse_args(argv)
    if args.no_build and not (built_frontend() / "index.html").is_file():
        parser.error(f"--no-build: there is no built frontend in {built_frontend()}; start one process without "
                     "--no-build first (it builds), then the others")
    if args.no_build and not settings.redis_url:
        parser.error("--no-build serves beside another app process, and app processes share the visitors' state "
                     "only through REFLEX_REDIS_URL: set it")
    if args.workers > 1 and not settings.redis_url:
        parser.error(f"{args.workers} workers need REFLEX_REDIS_URL (Redis holds the visitors' state for all of "
                     "them); set it, or run one worker")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ[WORKERS_VARIABLE] = str(args.workers)
    if args.no_build:
        os.environ["REFLEX_BACKEND_ONLY"] = "true"  # read by rxconfig.py as well as by Reflex's command
    os.environ["REFLEX_USE_GRANIAN"] = "true"  # Reflex would pick gunicorn + uvicorn if both were installed
    enable_worker_respawn()

    from reflex.reflex import cli
    from reflex.utils import prerequisites

    prerequisites.check_schema_up_to_date = check_schema_at_start

    port = str(args.port)
    if args.no_build:
        serve_built_frontend()
        command = ["run", "--env", "prod", "--backend-only", "--backend-port", port, "--backend-host", args.host]
    else:
        command = ["run", "--env", "prod", "--frontend-port", port, "--backend-port", port,
                   "--backend-host", args.host]
    cli.main(args=command, prog_name="reflex")


if __name__ == "__main__":
    main()
