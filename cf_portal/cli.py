"""Command line of cf_portal: `python -m cf_portal.cli <command>` (`--help` lists them)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from alembic.config import Config

from alembic import command
from cf_portal.settings import PROJECT_ROOT, get_settings


def alembic_config(url: str | None = None) -> Config:
    cfg = Config(str(Path(PROJECT_ROOT) / "alembic.ini"))
    cfg.attributes["configure_logger"] = False
    if url:
        cfg.attributes["url"] = url
    return cfg


def migrate(url: str | None = None) -> None:
    """Bring the database to the newest schema (creating a SQLite file's folder if needed)."""
    get_settings().ensure_data_dir()
    command.upgrade(alembic_config(url), "head")


def _catalog_or_none(path: Path | None):  # noqa: ANN202
    from cf_portal.services.catalog import read_catalog_file

    return None if path is None else read_catalog_file(path)


def iso_time(text: str) -> datetime:
    """An ISO time with its zone (a naive one is read as UTC)."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cf_portal.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply the database migrations")
    sub.add_parser("seed", help="demo mode: load the demo account and catalog; otherwise load CF_CATALOG_FILE, if "
                   "set (safe to re-run)")
    load = sub.add_parser("load-catalog", help="load the products, plans and coupons of a catalog file (JSON or "
                          "TOML); adds what is missing, changes nothing already there (safe to re-run)")
    load.add_argument("path", nargs="?", type=Path, help="the file (default: CF_CATALOG_FILE)")
    sub.add_parser("reset-demo", help="put the seeded demo account back to the seed (subscriptions cancelled at the "
                   "provider, then licenses, cards, history removed)")
    pending = sub.add_parser("resolve-pending", help="finish or undo purchases whose charge was never confirmed")
    pending.add_argument("--minutes", type=int, default=15, help="only purchases older than this (default 15)")
    sub.add_parser("settings", help="check the configuration and print where the database is")
    sub.add_parser("sync-catalog", help="create the products, monthly prices and coupons at the payment provider")
    bill = sub.add_parser("bill-due", help="renew every license whose period has ended (one charge per license and "
                          "period, safe to run twice or at once), end those cancelled at their period's end, retry "
                          "past-due ones (run every hour)")
    bill.add_argument("--now", type=iso_time, help="bill as of this ISO time, e.g. 2027-01-05T00:00:00+00:00 "
                      "(default: the clock)")
    rec = sub.add_parser("reconcile", help="compare every license with its subscription at the payment provider")
    rec.add_argument("--repair", action="store_true", help="take quantity and status from the provider")
    sub.add_parser("purge-expired", help="delete ended sessions, forgotten throttle counts, webhook events finished "
                   "30 days ago, emails sent 90 days ago and expired demo accounts, whose subscriptions are cancelled first (run daily)")
    hooks = sub.add_parser("deliver-webhooks", help="send the webhook events that are due (retries too); safe to run "
                           "several at once")
    hooks.add_argument("--loop", action="store_true", help="keep running, a pass every --interval seconds")
    hooks.add_argument("--interval", type=float, default=10.0, help="seconds between passes with --loop (default 10)")
    mails = sub.add_parser("deliver-emails", help="send the queued emails that are due (retries too), through "
                           "CF_SMTP_URL or, without it, to the Sent emails log; safe to run several at once")
    mails.add_argument("--loop", action="store_true", help="keep running, a pass every --interval seconds")
    mails.add_argument("--interval", type=float, default=10.0, help="seconds between passes with --loop (default 10)")
    key = sub.add_parser("create-api-key", help="make an API key for an owner's account and print it (only the "
                         "key, on stdout; it is not shown again)")
    key.add_argument("--account-email", required=True, help="the sign-in email of an owner of the account")
    key.add_argument("--name", required=True, help="what will use the key, like 'Phishing Simulator'")
    helpfb = sub.add_parser("help-feedback", help="what people answered to 'Did this answer your question?' at the end "
                            "of each Help panel: Yes / No per page and the newest comments")
    helpfb.add_argument("--since", type=iso_time, help="only answers from this ISO time on, e.g. 2026-12-01")
    helpfb.add_argument("--account-id", type=int, help="only this account's answers")
    helpfb.add_argument("--comments", type=int, default=20, help="how many of the newest comments (default 20)")
    args = parser.parse_args(argv)

    if args.command == "settings":
        settings = get_settings()
        db = settings.database_url.split("@")[-1] if "@" in settings.database_url else settings.database_url
        print(f"database: {db}; payments: {settings.payment_provider}; demo mode: {settings.demo_mode}")
    elif args.command == "migrate":
        migrate()
        print("database schema is up to date")
    elif args.command == "seed":
        from cf_portal.db import session_scope
        from cf_portal.services.seed import seed

        settings = get_settings()
        catalog = None if settings.demo_mode else _catalog_or_none(settings.catalog_file)
        with session_scope() as session:
            report = seed(session, demo_mode=settings.demo_mode, catalog=catalog)
        if settings.demo_mode:
            print(f"demo data ready: {report}")
        elif report is None:
            print("demo mode is off (CF_DEMO_MODE=false): no demo data loaded, and no catalog file is set "
                  "(CF_CATALOG_FILE); load yours with `python -m cf_portal.cli load-catalog <file>`")
        else:
            print(f"catalog of {settings.catalog_file} loaded: {report}")
    elif args.command == "load-catalog":
        from cf_portal.db import session_scope
        from cf_portal.services.catalog import load_catalog
        from cf_portal.services.errors import DomainError

        path = args.path or get_settings().catalog_file
        if path is None:
            print("name the catalog file: `load-catalog <file>`, or set CF_CATALOG_FILE", file=sys.stderr)
            return 1
        try:
            catalog = _catalog_or_none(path)
        except DomainError as exc:
            print(f"catalog not loaded: {exc.message}", file=sys.stderr)
            return 1
        with session_scope() as session:
            report = load_catalog(session, catalog)
        print(f"catalog of {path} loaded: {report}")
    elif args.command == "reset-demo":
        from cf_portal import clock
        from cf_portal.payments import get_provider
        from cf_portal.services.demo import reset_template

        reset_template(None, get_provider(), now=clock.now())
        print("demo account reset to the seed (its subscriptions cancelled at the payment provider)")
    elif args.command == "resolve-pending":
        from datetime import timedelta

        from cf_portal import clock
        from cf_portal.payments import get_provider
        from cf_portal.services.license_changes import resolve_pending_changes
        from cf_portal.services.purchase import resolve_pending

        older_than, now = timedelta(minutes=args.minutes), clock.now()
        outcome = resolve_pending(None, get_provider(), older_than=older_than, now=now)
        print("purchases: " + ", ".join(f"{count} {what.replace('_', ' ')}" for what, count in outcome.items()))
        outcome = resolve_pending_changes(None, get_provider(), older_than=older_than, now=now)
        print("license changes: " + ", ".join(f"{count} {what.replace('_', ' ')}" for what, count in outcome.items()))
    elif args.command == "sync-catalog":
        from cf_portal.payments import get_provider
        from cf_portal.services.provider_sync import sync_catalog

        for line in sync_catalog(None, get_provider()):
            print(line)
    elif args.command == "bill-due":
        from cf_portal import clock
        from cf_portal.payments import get_provider
        from cf_portal.services.renewals import bill_due, summary

        outcome = bill_due(None, get_provider(), now=args.now or clock.now())
        print(summary(outcome))
        return 1 if outcome.get("errors") else 0
    elif args.command == "reconcile":
        from cf_portal import clock
        from cf_portal.payments import get_provider
        from cf_portal.services.provider_sync import reconcile

        drifts = reconcile(None, get_provider(), repair=args.repair, now=clock.now())
        for drift in drifts:
            print(drift)
        print(f"{len(drifts)} differences with the provider" if drifts else "every license matches the provider")
        return 1 if drifts and not args.repair else 0
    elif args.command == "purge-expired":
        from cf_portal import clock
        from cf_portal.db import session_scope
        from cf_portal.payments import get_provider
        from cf_portal.services import emails
        from cf_portal.services.auth import purge_expired
        from cf_portal.services.demo import purge_expired_copies
        from cf_portal.services.webhooks import KEEP_FINISHED, purge_finished

        now = clock.now()
        with session_scope() as session:
            sessions, counts = purge_expired(session, now=now)
            events = purge_finished(session, now=now)
            mails = emails.purge_finished(session, now=now)
        print(f"{sessions} ended sessions and {counts} old throttle counts deleted")
        copies = purge_expired_copies(None, get_provider(), now=now)
        print(f"{copies.deleted} expired demo accounts deleted (their subscriptions cancelled first)")
        print(f"{events} webhook events delivered or failed over {KEEP_FINISHED.days} days ago deleted")
        print(f"{mails} emails sent or failed over {emails.KEEP_FINISHED.days} days ago deleted")
        for line in copies.kept:
            print(line, file=sys.stderr)
        return 1 if copies.kept else 0
    elif args.command == "create-api-key":
        from cf_portal.db import session_scope
        from cf_portal.services import api_keys
        from cf_portal.services.errors import DomainError

        try:
            with session_scope() as session:
                owner = api_keys.owner_by_email(session, args.account_email)
                created = api_keys.create(session, actor=owner, name=args.name, demo_mode=get_settings().demo_mode)
        except DomainError as exc:
            print(f"no key made: {exc.message}", file=sys.stderr)
            return 1
        print(created.secret)
        print(f"API key {created.key.id} ({created.key.prefix}…) made for account {owner.account_id}: store it now, "
              "it is not shown again", file=sys.stderr)
    elif args.command == "help-feedback":
        from cf_portal.db import session_scope
        from cf_portal.services.help_feedback import feedback_report, report_lines

        with session_scope(write=False) as session:
            report = feedback_report(session, since=args.since, account_id=args.account_id, recent=args.comments)
        print("\n".join(report_lines(report, since=args.since)))
    elif args.command == "deliver-webhooks":
        from cf_portal import clock
        from cf_portal.services.webhooks import deliver_due, run_forever

        if args.loop:
            try:
                run_forever(interval_s=max(args.interval, 0.5))
            except KeyboardInterrupt:
                pass
            return 0
        outcome = deliver_due(None, now=clock.now())
        print("webhooks: " + (", ".join(f"{count} {what}" for what, count in outcome.items()) or "nothing due"))
    elif args.command == "deliver-emails":
        from cf_portal import clock
        from cf_portal.services import emails
        from cf_portal.services.webhooks import run_forever

        if args.loop:
            try:
                run_forever(interval_s=max(args.interval, 0.5), deliver=emails.deliver_due)
            except KeyboardInterrupt:
                pass
            return 0
        outcome = emails.deliver_due(None, now=clock.now())
        print("emails: " + (", ".join(f"{count} {what}" for what, count in outcome.items()) or "nothing due"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
