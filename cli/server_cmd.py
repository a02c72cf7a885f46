"""``marginface serve``, ``marginface enroll`` and ``marginface keys``: the server and its store."""

from __future__ import annotations

import argparse
import os
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser("serve", help="run the HTTP API (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="server processes (they share the store)")
    serve.add_argument("--no-auth", action="store_true", help="no API keys (local trial only)")
    serve.add_argument("--pack", action="append", help="model pack to load (repeatable; default: default)")
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--access-log", action="store_true",
                       help="log a line per request (default: off; MARGINFACE_ACCESS_LOG)")
    serve.set_defaults(func=cmd_serve)

    enroll = subparsers.add_parser("enroll", help="enroll DIR/<subject>/*.jpg into a gallery (no HTTP)")
    enroll.add_argument("directory", help="one folder per subject; the folder name is the subject name")
    enroll.add_argument("--gallery", required=True)
    enroll.add_argument("--pack", default=None, help="pack for a new gallery (default: the default pack)")
    enroll.add_argument("--limit", type=int, default=None, help="at most this many images per subject")
    enroll.add_argument("--server", default=None, help="enroll over HTTP into this server (URL) instead")
    enroll.add_argument("--api-key", default=None, help="admin key for --server (default: $MARGINFACE_KEY)")
    enroll.set_defaults(func=cmd_enroll)

    keys = subparsers.add_parser("keys", help="manage API keys")
    actions = keys.add_subparsers(dest="keys_action", metavar="ACTION")
    create = actions.add_parser("create", help="create a key and print it (once)")
    create.add_argument("--admin", action="store_true", help="may create, change and delete galleries")
    create.add_argument("--name", default="key")
    create.add_argument("--if-none", action="store_true", help="only when no active key exists (first run)")
    create.set_defaults(func=cmd_keys_create)
    listing = actions.add_parser("list", help="list keys (never the secrets)")
    listing.set_defaults(func=cmd_keys_list)
    revoke = actions.add_parser("revoke", help="revoke a key by id, name or prefix")
    revoke.add_argument("key")
    revoke.set_defaults(func=cmd_keys_revoke)
    keys.set_defaults(func=lambda args: keys.print_help() or 2)


def _key_store():
    from app.settings import Settings
    from app.store.db import make_engine
    from app.store.keys import KeyStore
    from app.store.migrate import upgrade
    from app.store.repository import Repository

    settings = Settings()
    engine = make_engine(settings.resolved_database_url(), sqlite_synchronous=settings.sqlite_synchronous)
    upgrade(engine)
    return KeyStore(Repository(engine))


def cmd_keys_create(args: argparse.Namespace) -> int:
    store = _key_store()
    if args.if_none and store.active_count() > 0:
        return 0
    token, key = store.create(args.name, args.admin)
    kind = "admin" if key.admin else "plain"
    print(f"created {kind} key {key.id} ({key.name}); store it now, it is not shown again:", file=sys.stderr)
    print(token)
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    keys = _key_store().list()
    print(f"{'id':>4}  {'name':<20} {'prefix':<12} {'role':<6} {'created':<20} revoked")
    for k in keys:
        revoked = k.revoked_at.strftime("%Y-%m-%d %H:%M") if k.revoked_at else "-"
        role = "admin" if k.admin else "plain"
        print(f"{k.id:>4}  {k.name:<20} {k.prefix:<12} {role:<6} {k.created_at:%Y-%m-%d %H:%M:%S} {revoked}")
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    count = _key_store().revoke(args.key)
    if count == 0:
        print(f"marginface: no active key matches {args.key!r}", file=sys.stderr)
        return 1
    print(f"revoked {count} key(s)")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.services.context import NoKeysError

    if args.no_auth:
        os.environ["MARGINFACE_AUTH"] = "false"
    if args.access_log:
        os.environ["MARGINFACE_ACCESS_LOG"] = "true"
    if args.pack:
        os.environ["MARGINFACE_PACKS"] = '["' + '","'.join(args.pack) + '"]'
    from app.settings import Settings

    settings = Settings()
    if settings.auth and _key_store().active_count() == 0:
        raise NoKeysError(
            "no API key exists: create one with `marginface keys create --admin`, "
            "or start with --no-auth for a local trial"
        )
    if not settings.auth:
        print(
            "marginface: WARNING: authentication is OFF (--no-auth); anyone who can reach "
            f"{args.host}:{args.port} can read and change galleries",
            file=sys.stderr,
        )
    uvicorn.run(
        "app.main:create_app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        access_log=settings.access_log,  # issue 17: the line costs the server ~0.4 ms of CPU a request
    )
    return 0


def cmd_enroll(args: argparse.Namespace) -> int:
    if args.server:  # issue 12: through the Python client
        from cli.remote_enroll import enroll_remote

        return enroll_remote(args)
    from app.services.bulk_enroll import enroll_directory

    return enroll_directory(args.directory, args.gallery, pack=args.pack, limit=args.limit)
