"""The ``foryou`` command line."""

from __future__ import annotations

import argparse
import sys

from app.config import load_settings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.server.app import create_app
    from app.server.logs import configure_logging

    settings = load_settings()
    if args.host:
        settings = settings.with_overrides(host=args.host)
    if args.port:
        settings = settings.with_overrides(port=args.port)
    configure_logging(settings.log_level, settings.log_json)
    print(f"ForYou is serving on http://{settings.host}:{settings.port}/", flush=True)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, access_log=False,
                log_config=None)
    return 0


def _db_upgrade(_args: argparse.Namespace) -> int:
    from app.db.migrate import upgrade

    settings = load_settings()
    upgrade(settings)
    print(f"database at head: {settings.resolved_database_url}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="foryou", description="ForYou: short videos with a recommender.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the web app")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=_serve)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply migrations up to head").set_defaults(func=_db_upgrade)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
