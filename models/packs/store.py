"""Where packs live, how they are found and verified, and how installs land atomically.

A pack is a folder ``packs_dir()/<name>`` with ``pack.json`` and the ONNX files it names. Installs are
built in a hidden temporary folder inside ``packs_dir()`` and renamed into place, so a pack folder is
either complete or absent.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from models.errors import PackError
from models.packs.manifest import MANIFEST_NAME, PackManifest

DEFAULT_PACK = "default"

# (resolved path, size, mtime_ns) -> sha256, so repeated loads in one process do not re-hash.
_DIGESTS: dict[tuple[str, int, int], str] = {}


def home_dir() -> Path:
    """``$MARGINFACE_HOME`` or ``~/.marginface``."""
    env = os.environ.get("MARGINFACE_HOME")
    return Path(env).expanduser() if env else Path.home() / ".marginface"


def packs_dir() -> Path:
    """``$MARGINFACE_PACKS_DIR`` or ``home_dir()/"packs"``."""
    env = os.environ.get("MARGINFACE_PACKS_DIR")
    return Path(env).expanduser() if env else home_dir() / "packs"


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cached_sha256(path: Path) -> str:
    """sha256 of ``path``, remembered for as long as its size and mtime stay the same."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = sha256_file(path)
    return _DIGESTS[key]


def list_packs() -> list[tuple[Path, PackManifest]]:
    """Installed packs with a readable manifest, sorted by folder name (broken ones are skipped)."""
    root = packs_dir()
    if not root.is_dir():
        return []
    packs = []
    for folder in sorted(root.iterdir()):
        if folder.name.startswith(".") or not (folder / MANIFEST_NAME).is_file():
            continue
        try:
            packs.append((folder, PackManifest.read(folder)))
        except PackError:
            continue
    return packs


def pack_folder(name_or_path: str | Path) -> Path:
    """The folder a pack name or path refers to (not checked for existence)."""
    text = str(name_or_path)
    candidate = Path(text).expanduser()
    looks_like_path = isinstance(name_or_path, Path) or os.sep in text or text.startswith(".")
    if looks_like_path or (candidate.is_dir() and (candidate / MANIFEST_NAME).is_file()):
        return candidate
    return packs_dir() / text


def resolve_pack(name_or_path: str | Path, verify: bool = True) -> tuple[Path, PackManifest]:
    """Find a pack by name (in ``packs_dir()``) or folder path; with ``verify`` check every file's sha256.

    Raises PackError ``pack_not_found``, ``bad_manifest``, ``missing_file`` or ``hash_mismatch``.
    """
    folder = pack_folder(name_or_path)
    if not folder.is_dir():
        if str(name_or_path) == DEFAULT_PACK:
            raise PackError(
                f"the default model pack is not installed (looked in {folder}); "
                "run `marginface models install default` (offline, a few seconds)",
                code="pack_not_found",
            )
        raise PackError(
            f"model pack {str(name_or_path)!r} not found (no folder {folder}); see `marginface models list`",
            code="pack_not_found",
        )
    manifest = PackManifest.read(folder)
    if verify:
        verify_files(folder, manifest)
    return folder.resolve(), manifest


def model_path(folder: Path, file_name: str) -> Path:
    """``folder/file_name``, refusing names that leave the pack folder."""
    path = (folder / file_name).resolve()
    if folder.resolve() not in path.parents:
        raise PackError(
            f"model file {file_name!r} points outside the pack folder {folder}", code="bad_manifest"
        )
    return path


def verify_files(folder: Path, manifest: PackManifest) -> None:
    """Every model file exists and matches its manifest sha256, else PackError."""
    for entry in manifest.models:
        path = model_path(folder, entry.file)
        if not path.is_file():
            raise PackError(
                f"pack {manifest.name!r}: {entry.role} file {entry.file} is missing from {folder}; "
                "reinstall the pack (`marginface models install ... --force`)",
                code="missing_file",
            )
        actual = cached_sha256(path)
        if actual != entry.sha256:
            raise PackError(
                f"pack {manifest.name!r}: {entry.file} has sha256 {actual}, "
                f"the manifest says {entry.sha256}; "
                "the file is damaged or was replaced — reinstall the pack with --force",
                code="hash_mismatch",
            )


def pack_disk_size(folder: Path) -> int:
    """Bytes used by the files in a pack folder."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def existing_pack(root: Path, name: str) -> Path | None:
    """``root/name`` when it holds a valid, verified pack; PackError ``pack_exists`` when it is broken."""
    final = root / name
    if not final.exists():
        return None
    try:
        resolve_pack(final, verify=True)
    except PackError as exc:
        raise PackError(
            f"{final} exists but is not a valid pack ({exc.code}: {exc}); use --force to replace it",
            code="pack_exists",
        ) from exc
    return final


@contextmanager
def staged_pack(root: Path, name: str, replace: bool = True) -> Iterator[Path]:
    """Yield an empty temporary folder in ``root``; on success it replaces ``root/name`` atomically.

    On any error the temporary folder is removed and an existing pack is left untouched. With
    ``replace=False`` a pack that appeared meanwhile (a concurrent install) is kept and ours dropped.
    """
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.installing-", dir=root))
    staging.chmod(0o755)  # mkdtemp makes it private; a pack is readable like any installed file
    try:
        yield staging
        final = root / name
        retired = None
        if final.exists() and not replace:
            return
        if final.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{name}.old-", dir=root))
            os.replace(final, retired / name)
        try:
            os.replace(staging, final)
        except OSError:
            if retired is not None:  # put the previous pack back
                os.replace(retired / name, final)
            elif not replace and final.exists():  # another install finished first
                return
            raise
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def remove_pack(name: str) -> Path:
    """Delete an installed pack folder by name; PackError ``pack_not_found`` when there is none."""
    folder = packs_dir() / name
    if os.sep in name or name.startswith(".") or not folder.is_dir():
        raise PackError(f"no installed pack named {name!r} in {packs_dir()}", code="pack_not_found")
    retired = Path(tempfile.mkdtemp(prefix=f".{name}.removing-", dir=packs_dir()))
    os.replace(folder, retired / name)  # disappears at once for readers, then is deleted
    shutil.rmtree(retired, ignore_errors=True)
    return folder
