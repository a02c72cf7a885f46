"""Installing a pack from a local folder that already holds ``pack.json`` (e.g. written by training)."""

from __future__ import annotations

import shutil
from pathlib import Path

from models.errors import PackError
from models.packs.manifest import PackManifest
from models.packs.store import existing_pack, model_path, staged_pack, verify_files


def validate_pack_folder(folder: Path) -> PackManifest:
    """Manifest parses, names a detector and a recogniser, and every file matches its sha256."""
    manifest = PackManifest.read(folder)
    manifest.model("detector")
    manifest.model("recogniser")
    if not manifest.thresholds:
        raise PackError(f"{folder}/pack.json declares no threshold", code="bad_manifest")
    verify_files(folder, manifest)
    return manifest


def install_local_pack(folder: Path, dest_root: Path, force: bool = False) -> Path:
    """Copy a validated pack folder into ``dest_root/<manifest name>`` (atomic; kept unless ``force``)."""
    folder = Path(folder).expanduser().resolve()
    manifest = validate_pack_folder(folder)
    final = Path(dest_root) / manifest.name
    if final.resolve() == folder:
        return final  # installing a pack onto itself
    if not force and existing_pack(Path(dest_root), manifest.name) is not None:
        raise PackError(
            f"a pack named {manifest.name!r} is already installed at {final}; use --force to replace it",
            code="pack_exists",
        )
    with staged_pack(Path(dest_root), manifest.name) as staging:
        for entry in manifest.models:
            target = staging / entry.file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(model_path(folder, entry.file), target)
        for extra in _companion_files(folder, manifest):
            shutil.copyfile(folder / extra, staging / extra)
        manifest.write(staging)
        verify_files(staging, manifest)  # the copies, not just the sources
    return final


def _companion_files(folder: Path, manifest: PackManifest) -> list[str]:
    """Files that travel with a pack besides its ONNX models: the model card written by
    ``marginface export`` and a TensorRT engine named in ``notes.tensorrt.file``."""
    names = ["MODEL_CARD.md"]
    engine = manifest.notes.get("tensorrt")
    if isinstance(engine, dict) and isinstance(engine.get("file"), str):
        names.append(engine["file"])
    return [n for n in names if "/" not in n and (folder / n).is_file()]

