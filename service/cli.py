"""The ``segmentation`` command: serve, project, rebuild, keys, generate."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from service.auth import ROLES, KeyStore
from service.logs import configure_logging
from service.settings import Settings


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = argparse.ArgumentParser(prog="segmentation", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the HTTP API (with the projector, by default)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--no-projector", action="store_true", help="run the API only")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="API worker processes; the projector then runs once, in the supervising process",
    )

    commands.add_parser("project", help="run the projector alone, following the event store")
    commands.add_parser("rebuild", help="empty the read model and replay every event")

    keys = commands.add_parser("keys", help="manage API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    add = key_commands.add_parser("add", help="create a key and print it once")
    add.add_argument("user")
    add.add_argument("role", choices=ROLES)
    add.add_argument(
        "--restrict",
        action="append",
        default=[],
        metavar="COLUMN=VALUE[,VALUE]",
        help="see only rows whose COLUMN is one of the values (repeat for more columns)",
    )
    key_commands.add_parser("list", help="list stored keys (ids, users, roles; never secrets)")
    revoke = key_commands.add_parser("revoke", help="revoke a stored key by its id")
    revoke.add_argument("key_id", help="the id shown by 'keys list' (the part of a key before the dot)")

    generate = commands.add_parser("generate", help="write synthetic sales rows to a .csv or .parquet file")
    generate.add_argument("rows", type=int)
    generate.add_argument("customers", type=int)
    generate.add_argument("out", help="the file to write: .csv or .parquet")
    generate.add_argument("--seed", type=int, default=42, help="the same seed writes the same rows")

    args = parser.parse_args(argv)
    if args.command == "generate":
        from service.generate import generate as write_rows

        write_rows(args.rows, args.customers, args.out, seed=args.seed)
        return 0
    try:
        settings = Settings.from_env()
    except ValueError as exc:  # a malformed setting: say which, without a traceback
        print(f"segmentation: a setting is malformed: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format)
    try:
        KeyStore(settings.data_dir / "keys.json", settings.api_keys)
    except ValueError as exc:  # a malformed SEGMENTATION_API_KEYS: say so, without a traceback
        print(f"segmentation: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return _serve(settings, args.host, args.port, projector=not args.no_projector, workers=args.workers)
    if args.command == "project":
        return _project(settings)
    if args.command == "rebuild":
        return _rebuild(settings)
    if args.command == "keys":
        store = KeyStore(settings.data_dir / "keys.json", settings.api_keys)
        if args.keys_command == "add":
            try:
                print(store.add(args.user, args.role, _restrictions(args.restrict) or None))
            except ValueError as exc:
                print(f"segmentation: {exc}", file=sys.stderr)
                return 2
        elif args.keys_command == "list":
            for entry in store.listing():
                limits = "; ".join(f"{c}={','.join(v)}" for c, v in entry["restrictions"].items())
                print(f"{entry['id']}\t{entry['user']}\t{entry['role']}\t{limits}")
        elif not store.revoke(args.key_id):
            print(f"no stored key with id {args.key_id}", file=sys.stderr)
            return 1
        return 0
    return 2  # pragma: no cover - argparse requires a command


def _restrictions(items: list[str]) -> dict[str, list[str]]:
    restrictions: dict[str, list[str]] = {}
    for item in items:
        column, sep, values = item.partition("=")
        if not sep or not column or not values:
            raise SystemExit(f"segmentation: --restrict takes COLUMN=VALUE[,VALUE], not {item!r}")
        restrictions.setdefault(column, []).extend(v for v in values.split(",") if v)
    return restrictions


def _serve(settings: Settings, host: str, port: int, projector: bool, workers: int = 1) -> int:
    import dataclasses
    import os

    import uvicorn

    from service.app import Runtime, create_app

    store = KeyStore(settings.data_dir / "keys.json", settings.api_keys)
    if len(store) == 0:
        key = store.add("admin", "admin")
        print(
            "No API key was configured; created an admin key (stored only as a hash, shown once):\n"
            f"  {key}\n",
            flush=True,
        )
    if workers <= 1:
        settings = dataclasses.replace(settings, projector=projector)
        uvicorn.run(create_app(settings), host=host, port=port, log_config=None)
        return 0
    # Several workers: Redis (embedded if need be) and the one projector live in this
    # supervising process; the workers are stateless API processes that find them by REDIS_URL.
    runtime = Runtime(settings)
    runtime.start(run_projector=projector)
    try:
        os.environ["REDIS_URL"] = runtime.redis_url or ""
        os.environ["SEGMENTATION_PROJECTOR"] = "0"
        uvicorn.run(
            "service.app:create_app", factory=True, host=host, port=port, workers=workers, log_config=None
        )
    finally:
        runtime.stop()
    return 0


def _project(settings: Settings) -> int:
    from service.app import Runtime

    runtime = Runtime(settings)
    runtime.start(run_projector=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"projecting into {runtime.redis_url} (Ctrl-C stops)", flush=True)
    stop.wait()
    runtime.stop()
    return 0


def _rebuild(settings: Settings) -> int:
    from service.app import Runtime
    from service.projections.segmentation import rebuild

    runtime = Runtime(settings)
    runtime.start(run_projector=False)
    try:
        import redis

        from service.projections.keys import Keys

        assert runtime.app is not None and runtime.redis_url is not None
        applied = rebuild(runtime.app, redis.Redis.from_url(runtime.redis_url), Keys(settings.redis_prefix))
        print(f"rebuilt the read model from {applied} events", flush=True)
    finally:
        runtime.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
