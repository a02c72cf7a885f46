"""``install_pack``: one entry point over the installers (default, insightface, local folder).

It lives apart from ``store`` so that the installers can use the store without the store importing them
(no import circle: install → installers → store).
"""

from __future__ import annotations

from pathlib import Path

from models.errors import PackError
from models.packs.default_pack import install_default_pack
from models.packs.insightface_pack import install_insightface_pack
from models.packs.local_pack import install_local_pack
from models.packs.store import DEFAULT_PACK, packs_dir


def install_pack(
    source: str,
    *,
    accept_license: bool = False,
    force: bool = False,
    progress: bool = True,
    from_path: str | Path | None = None,
    allow_unverified: bool = False,
) -> Path:
    """Install ``default``, ``insightface:<name>`` (downloaded, or ``from_path`` zip/folder) or a folder.

    Returns the installed pack folder. Already installed and valid: returned as is unless ``force``.
    A download whose files have no pinned sha256 is refused unless ``allow_unverified``.
    """
    root = packs_dir()
    if from_path is not None and not source.startswith("insightface:"):
        raise PackError("--from only applies to insightface:<name> sources", code="bad_manifest")
    if source == DEFAULT_PACK:
        return install_default_pack(root, force=force)
    if source.startswith("insightface:"):
        return install_insightface_pack(
            source.split(":", 1)[1],
            root,
            accept_license=accept_license,
            force=force,
            progress=progress,
            from_path=from_path,
            allow_unverified=allow_unverified,
        )
    folder = Path(source).expanduser()
    if folder.is_dir():
        return install_local_pack(folder, root, force=force)
    raise PackError(
        f"unknown pack source {source!r}: use 'default', 'insightface:<name>' or a folder with pack.json",
        code="pack_not_found",
    )
