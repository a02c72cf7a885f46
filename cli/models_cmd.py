"""``marginface models``: install, list, inspect, verify and remove model packs."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="manage model packs (detector + recogniser)")
    commands = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    install = commands.add_parser("install", help="install a pack: default, insightface:<name> or a folder")
    install.add_argument(
        "source", help="'default', 'insightface:buffalo_l' (…_m, _s, _sc, antelopev2) or PATH"
    )
    install.add_argument(
        "--from", dest="from_path", metavar="ZIP_OR_DIR", help="insightface zip/folder on disk"
    )
    install.add_argument("--accept-license", action="store_true", help="accept non-commercial model licenses")
    install.add_argument("--force", action="store_true", help="rebuild/replace an installed pack")
    install.add_argument("--allow-unverified", action="store_true",
                         help="download a pack whose files have no pinned sha256 (e.g. buffalo_m)")
    install.add_argument("--no-progress", action="store_true", help="no download progress bar")
    install.set_defaults(func=run_install)

    listing = commands.add_parser("list", help="installed packs")
    listing.set_defaults(func=run_list)

    info = commands.add_parser("info", help="a pack's manifest (JSON) and disk size")
    info.add_argument("name", help="pack name or folder")
    info.set_defaults(func=run_info)

    verify = commands.add_parser("verify", help="check hashes and run each model once in ONNX Runtime")
    verify.add_argument("name", help="pack name or folder")
    verify.set_defaults(func=run_verify)

    remove = commands.add_parser("remove", help="delete an installed pack")
    remove.add_argument("name")
    remove.set_defaults(func=run_remove)


def run_install(args: argparse.Namespace) -> int:
    from models.packs.install import install_pack
    from models.packs.manifest import PackManifest

    folder = install_pack(
        args.source,
        accept_license=args.accept_license,
        force=args.force,
        progress=not args.no_progress,
        from_path=args.from_path,
        allow_unverified=args.allow_unverified,
    )
    manifest = PackManifest.read(folder)
    print(f"installed {manifest.name} {manifest.version} at {folder}")
    unverified = manifest.notes.get("unverified_files") or []
    if unverified:
        print(f"warning: no published checksum known for {', '.join(unverified)}; installed as found")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from models.packs.store import list_packs, pack_disk_size, packs_dir

    packs = list_packs()
    if not packs and not any(p.is_dir() for p in packs_dir().glob("[!.]*")):
        print(f"no model packs in {packs_dir()}; run `marginface models install default`")
        return 0
    print(f"{'NAME':<16} {'VERSION':<18} {'DETECTOR':<28} {'RECOGNISER':<30} {'SIZE':>8}  LICENSE")
    for folder, manifest in packs:
        detector = next((m for m in manifest.models if m.role == "detector"), None)
        recogniser = next((m for m in manifest.models if m.role == "recogniser"), None)
        size_mb = pack_disk_size(folder) / 1e6
        print(
            f"{manifest.name:<16} {manifest.version:<18} "
            f"{(detector.file if detector else '-'):<28} {(recogniser.file if recogniser else '-'):<30} "
            f"{size_mb:7.1f}M  {manifest.license}"
        )
    listed = {folder.name for folder, _ in packs}
    for folder in sorted(packs_dir().iterdir()):
        if folder.is_dir() and not folder.name.startswith(".") and folder.name not in listed:
            print(
                f"{folder.name:<16} (not a usable pack: no valid pack.json; "
                f"`marginface models remove {folder.name}`)"
            )
    return 0


def run_info(args: argparse.Namespace) -> int:
    from models.packs.store import pack_disk_size, resolve_pack

    folder, manifest = resolve_pack(args.name, verify=False)
    document = {
        "path": str(folder),
        "disk_size_bytes": pack_disk_size(folder),
        "manifest": manifest.model_dump(),
    }
    print(json.dumps(document, indent=2))
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from models.packs.checks import smoke_run
    from models.packs.store import resolve_pack

    folder, manifest = resolve_pack(args.name, verify=True)
    print(f"hashes OK ({len(manifest.models)} files)")
    for line in smoke_run(folder, manifest):
        print(f"runs OK: {line}")
    print(f"OK {manifest.name} ({folder})")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from models.packs.store import remove_pack

    folder = remove_pack(args.name)
    print(f"removed {folder}")
    return 0
