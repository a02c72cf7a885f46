"""``marginface monitors``: add, list and delete camera monitors, show their events (over the HTTP API)."""

from __future__ import annotations

import argparse
import json
import os
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    monitors = subparsers.add_parser("monitors", help="camera monitors and their events (via a server)")
    monitors.add_argument("--server", default=os.environ.get("MARGINFACE_SERVER", "http://127.0.0.1:8000"))
    monitors.add_argument("--api-key", default=None, help="admin key (default: $MARGINFACE_KEY)")
    actions = monitors.add_subparsers(dest="action", metavar="ACTION")
    add = actions.add_parser("add", help="watch a camera (rtsp, rtsp-listen, http(s), /dev/videoN, file)")
    add.add_argument("name")
    add.add_argument("--source", required=True)
    add.add_argument("--gallery", required=True)
    add.add_argument("--fps", type=float, default=5.0, help="frame-rate cap (default 5)")
    add.add_argument("--min-face", type=int, default=40, help="smallest face side in pixels (default 40)")
    add.add_argument("--roi", default=None, help="region of interest x,y,w,h as fractions, e.g. 0,0,0.5,1")
    add.add_argument("--absence", type=float, default=30.0, help="re-announce a person after this many s")
    add.set_defaults(func=cmd_add)
    listing = actions.add_parser("list", help="monitors with owner and health")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_list)
    delete = actions.add_parser("delete", help="stop and delete a monitor (its events stay)")
    delete.add_argument("name")
    delete.set_defaults(func=cmd_delete)
    events = actions.add_parser("events", help="recent events, newest first")
    events.add_argument("--monitor", default=None)
    events.add_argument("--subject", default=None)
    events.add_argument("--kind", choices=["recognized", "unknown"], default=None)
    events.add_argument("--limit", type=int, default=20)
    events.set_defaults(func=cmd_events)
    monitors.set_defaults(func=lambda args: monitors.print_help() or 2)


def _call(args: argparse.Namespace, method: str, path: str, **kwargs) -> dict | None:
    import httpx

    key = args.api_key or os.environ.get("MARGINFACE_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        url = args.server.rstrip("/") + path
        response = httpx.request(method, url, headers=headers, timeout=30, **kwargs)
    except httpx.HTTPError as exc:
        print(f"marginface: cannot reach {args.server}: {exc}", file=sys.stderr)
        return None
    body = response.json() if response.content else {}
    if response.status_code >= 400:
        error = body.get("error", {})
        print(f"marginface: error [{error.get('code', response.status_code)}]: {error.get('message', body)}",
              file=sys.stderr)
        return None
    return body


def cmd_add(args: argparse.Namespace) -> int:
    body = {"name": args.name, "source": args.source, "gallery": args.gallery, "fps": args.fps,
            "min_face": args.min_face, "absence_s": args.absence}
    if args.roi:
        try:
            body["roi"] = [float(v) for v in args.roi.split(",")]
        except ValueError:
            print("marginface: --roi takes four numbers: x,y,w,h", file=sys.stderr)
            return 2
    result = _call(args, "POST", "/monitors", json=body)
    if result is None:
        return 1
    print(f"monitor {result['name']} added ({result['source']} → gallery {result['gallery']})")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    result = _call(args, "GET", "/monitors")
    if result is None:
        return 1
    if args.json:
        print(json.dumps(result["monitors"], indent=2))
        return 0
    print(f"{'name':<16} {'state':<13} {'fps':>5} {'frames':>7} {'dropped':>7} {'events':>6}  last error")
    for m in result["monitors"]:
        h = m["health"]
        print(f"{m['name']:<16} {h['state']:<13} {h['fps']:>5} {h['frames_processed']:>7} "
              f"{h['frames_dropped']:>7} {h['events']:>6}  {h['last_error'] or '-'}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    if _call(args, "DELETE", f"/monitors/{args.name}") is None:
        return 1
    print(f"monitor {args.name} deleted")
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    params = {k: v for k, v in {"monitor": args.monitor, "subject": args.subject, "kind": args.kind,
                                "limit": args.limit}.items() if v is not None}
    result = _call(args, "GET", "/events", params=params)
    if result is None:
        return 1
    for e in result["events"]:
        who = e["subject"] if e["kind"] == "recognized" else f"unknown (cluster {e['cluster_id']})"
        sim = f" {e['similarity']:.3f}" if e["similarity"] is not None else ""
        print(f"{e['first_seen'][:19]}  {e['monitor']:<14} {who}{sim}  {e['id']}")
    return 0
