"""The production server: `python -m cf_portal.serve [--workers N] [--port P] [--host H]`.

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
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence

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
    args = parser.parse_args(argv)
    if args.workers > 1 and not settings.redis_url:
        parser.error(f"{args.workers} workers need REFLEX_REDIS_URL (Redis holds the visitors' state for all of "
                     "them); set it, or run one worker")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ[WORKERS_VARIABLE] = str(args.workers)
    os.environ["REFLEX_USE_GRANIAN"] = "true"  # Reflex would pick gunicorn + uvicorn if both were installed
    enable_worker_respawn()

    from reflex.reflex import cli
    from reflex.utils import prerequisites

    prerequisites.check_schema_up_to_date = check_schema_at_start

    port = str(args.port)
    cli.main(args=["run", "--env", "prod", "--frontend-port", port, "--backend-port", port,
                   "--backend-host", args.host], prog_name="reflex")


if __name__ == "__main__":
    main()
