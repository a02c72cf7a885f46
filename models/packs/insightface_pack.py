"""insightface model packs (buffalo_*, antelopev2): download or take a local zip/folder, verify, map roles.

The weights are licensed for non-commercial research only, so installing needs ``accept_license``.
Known checksums come from public projects that pin these release files (see docs/model-packs.md).
A download whose digest is not pinned (neither the zip's nor every chosen file's) is refused unless the
user passes ``allow_unverified`` (``--allow-unverified``); a local zip/folder the user supplies is installed
with ``published_sha256_verified: false`` on the files we cannot check. Zip extraction is capped in size
and count and takes base names only (no path escapes).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from models.errors import PackError
from models.packs.manifest import ModelEntry, PackManifest, Threshold
from models.packs.store import existing_pack, sha256_file, staged_pack

RELEASE_URL = "https://github.com/deepinsight/insightface/releases/download/v0.7"
URL_ENV = "MARGINFACE_INSIGHTFACE_URL"  # another base URL (a mirror; tests point it at nothing)
LICENSE = "insightface pretrained models: non-commercial research use only"

# sha256 of the release zips and of the ONNX files inside them, as pinned by several public projects.
ZIP_SHA256 = {
    "buffalo_l": "80ffe37d8a5940d59a7384c201a2a38d4741f2f3c51eef46ebb28218a7b0ca2f",
    "buffalo_s": "d85a87f503f691807cd8bb97128bdf7a0660326cd9cd02657127fa978bab8b5e",
    "buffalo_sc": "57d31b56b6ffa911c8a73cfc1707c73cab76efe7f13b675a05223bf42de47c72",
    "antelopev2": "8e182f14fc6e80b3bfa375b33eb6cff7ee05d8ef7633e738d1c89021dcf0c5c5",
}
FILE_SHA256 = {
    "det_10g.onnx": "5838f7fe053675b1c7a08b633df49e7af5495cee0493c7dcf6697200b85b5b91",
    "scrfd_10g_bnkps.onnx": "5838f7fe053675b1c7a08b633df49e7af5495cee0493c7dcf6697200b85b5b91",
    "det_500m.onnx": "5e4447f50245bbd7966bd6c0fa52938c61474a04ec7def48753668a9d8b4ea3a",
    "w600k_r50.onnx": "4c06341c33c2ca1f86781dab0e829f88ad5b64be9fba56e56bc9ebdefc619e43",
    "w600k_mbf.onnx": "9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f",
    "glintr100.onnx": "4ab1d6435d639628a6f3e5008dd4f929edf4c4124b1a7169e1048f9fef534cdf",
}
# The detector and recogniser each pack is published with.
PACK_FILES = {
    "buffalo_l": ("det_10g.onnx", "w600k_r50.onnx"),
    "buffalo_m": ("det_2.5g.onnx", "w600k_r50.onnx"),
    "buffalo_s": ("det_500m.onnx", "w600k_mbf.onnx"),
    "buffalo_sc": ("det_500m.onnx", "w600k_mbf.onnx"),
    "antelopev2": ("scrfd_10g_bnkps.onnx", "glintr100.onnx"),
}
MAX_EXTRACT_BYTES = 2 * 1024**3  # all extracted ONNX files together (antelopev2, the largest, is ~0.4 GB)
MAX_ARCHIVE_MEMBERS = 10_000
DETECTOR_NAME = re.compile(r"^(det_[0-9.]+[gm]|scrfd_.*)\.onnx$")
RECOGNISER_NAME = re.compile(r"^(w600k_(r50|mbf)|glintr100)\.onnx$")
IGNORED_NAME = re.compile(r"^(1k3d68|2d106det|genderage)\.onnx$")
PROVISIONAL_THRESHOLD = Threshold(
    value=0.3,
    source="provisional, not calibrated for this pack: a cosine of about 0.3 is the value commonly used "
    "with insightface ArcFace recognisers; calibrate it with `marginface eval` on your data",
)


def require_license(accept_license: bool, name: str) -> None:
    if not accept_license:
        raise PackError(
            f"insightface:{name} weights are licensed for non-commercial research use only "
            "(https://github.com/deepinsight/insightface#license); re-run with --accept-license to confirm "
            "your use complies, or use the default pack (Apache-2.0)",
            code="license_not_accepted",
        )


def download(url: str, target: Path, progress: bool = True) -> None:
    """Stream ``url`` into ``target`` with a tqdm bar; PackError ``download_failed`` on any failure."""
    from tqdm import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": "marginface"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response, open(target, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=target.name, disable=not progress) as bar:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PackError(
            f"could not download {url}: {reason}. Without network access, fetch the zip on another machine "
            "and install it with --from PATH_TO_ZIP (or an unpacked folder such as "
            "~/.insightface/models/NAME)",
            code="download_failed",
        ) from exc


def role_of(path: Path) -> str | None:
    """'detector', 'recogniser' or None, by file name, else by graph shape (as insightface routes models)."""
    name = path.name
    if IGNORED_NAME.match(name):
        return None
    if DETECTOR_NAME.match(name):
        return "detector"
    if RECOGNISER_NAME.match(name):
        return "recogniser"
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception:  # noqa: BLE001 - not an ONNX file we can read: not a candidate
        return None
    dims = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] if graph.input else []
    if len(graph.output) >= 6:
        return "detector"
    if len(dims) == 4 and dims[2:] == [112, 112] and len(graph.output) == 1:
        return "recogniser"
    return None


def pick(candidates: dict[str, Path], role: str, preferred: str) -> Path:
    if preferred in candidates:
        return candidates[preferred]
    if not candidates:
        raise PackError(f"no {role} ONNX file found in the insightface pack source", code="missing_file")
    return candidates[sorted(candidates)[0]]


def gather_onnx(source: Path, scratch: Path, max_bytes: int = MAX_EXTRACT_BYTES) -> list[Path]:
    """ONNX files of a folder, or extracted from a zip into ``scratch``: by base name (no path escapes),
    at most ``max_bytes`` in all, counted while writing (a member's declared size may lie)."""
    if source.is_dir():
        return sorted(p for p in source.rglob("*.onnx") if p.is_file())
    if not zipfile.is_zipfile(source):
        raise PackError(f"{source} is neither a folder nor a zip file", code="bad_manifest")
    files = []
    written = 0
    try:
        with zipfile.ZipFile(source) as archive:
            members = archive.infolist()
            if len(members) > MAX_ARCHIVE_MEMBERS:
                raise PackError(f"{source} holds {len(members)} entries (limit {MAX_ARCHIVE_MEMBERS})",
                                code="archive_too_large")
            for info in members:
                name = Path(info.filename.replace("\\", "/")).name
                if info.is_dir() or not name.endswith(".onnx") or IGNORED_NAME.match(name):
                    continue
                if written + info.file_size > max_bytes:
                    raise _too_large(source, max_bytes)
                target = scratch / name
                with archive.open(info) as src, open(target, "wb") as dst:
                    for chunk in iter(lambda src=src: src.read(1 << 20), b""):
                        written += len(chunk)
                        if written > max_bytes:
                            raise _too_large(source, max_bytes)
                        dst.write(chunk)
                files.append(target)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as exc:
        raise PackError(f"{source}: unreadable zip ({exc})", code="bad_manifest") from exc
    return files


def _too_large(source: Path, max_bytes: int) -> PackError:
    return PackError(
        f"{source} would extract to more than {max_bytes} bytes of ONNX files; refused (a zip bomb?)",
        code="archive_too_large",
    )


def pinned(name: str) -> bool:
    """Whether a download of pack ``name`` can be checked: its zip's sha256 or every file's is pinned."""
    return name in ZIP_SHA256 or all(f in FILE_SHA256 for f in PACK_FILES[name])


def recogniser_normalisation(path: Path) -> tuple[float, float]:
    """(mean, std): graphs that start with Sub/Mul normalise inside (mean 0, std 1), others 127.5/127.5."""
    import onnx

    ops = {n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node[:8]}
    if {"Sub", "Mul"} <= ops:
        return 0.0, 1.0
    return 127.5, 127.5


def model_entry(path: Path, role: str, checked: dict[str, bool]) -> ModelEntry:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    dims = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    extra = {"published_sha256_verified": checked[path.name]}
    if role == "detector":
        size = (dims[3], dims[2]) if len(dims) == 4 and dims[2] > 0 and dims[3] > 0 else None
        return ModelEntry(
            file=path.name,
            sha256=sha256_file(path),
            role="detector",
            format="scrfd",
            input_size=size,
            color_order="RGB",
            mean=(127.5,) * 3,
            std=(128.0,) * 3,
            dynamic_batch=dims[0] <= 0,
            **extra,
        )
    mean, std = recogniser_normalisation(path)
    width = graph.output[0].type.tensor_type.shape.dim[-1].dim_value or None
    return ModelEntry(
        file=path.name,
        sha256=sha256_file(path),
        role="recogniser",
        format="arcface",
        input_size=(112, 112),
        color_order="RGB",
        mean=(mean,) * 3,
        std=(std,) * 3,
        embedding_size=width,
        dynamic_batch=dims[0] <= 0,
        **extra,
    )


def install_insightface_pack(
    name: str,
    dest_root: Path,
    *,
    accept_license: bool = False,
    force: bool = False,
    progress: bool = True,
    from_path: str | Path | None = None,
    allow_unverified: bool = False,
) -> Path:
    """Install ``insightface:<name>`` into ``dest_root/<name>`` from the release zip or ``from_path``.
    Downloading a pack without pinned digests needs ``allow_unverified``."""
    if name not in PACK_FILES:
        raise PackError(
            f"unknown insightface pack {name!r}; known: {', '.join(sorted(PACK_FILES))}",
            code="pack_not_found",
        )
    require_license(accept_license, name)
    dest_root = Path(dest_root)
    if not force and (found := existing_pack(dest_root, name)) is not None:
        return found
    if from_path is None and not pinned(name) and not allow_unverified:
        raise PackError(
            f"insightface:{name} has no pinned sha256 (neither its zip nor {', '.join(PACK_FILES[name])}), "
            "so a download cannot be verified; re-run with --allow-unverified to install it anyway, or "
            "install a zip you checked yourself with --from PATH",
            code="unverified_download",
        )
    dest_root.mkdir(parents=True, exist_ok=True)
    notes: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix=f".{name}.fetch-", dir=dest_root) as tmp:
        scratch = Path(tmp)
        if from_path is None:
            url = f"{os.environ.get(URL_ENV, RELEASE_URL).rstrip('/')}/{name}.zip"
            source = scratch / f"{name}.zip"
            download(url, source, progress)
            origin = url
        else:
            source = Path(from_path).expanduser()
            if not source.exists():
                raise PackError(f"--from {source}: no such file or folder", code="missing_file")
            origin = str(source.resolve())
        if source.is_file() and name in ZIP_SHA256:
            zip_ok = sha256_file(source) == ZIP_SHA256[name]
            notes["zip_sha256_matches_release"] = zip_ok
            if not zip_ok and from_path is None:
                raise PackError(
                    f"{url} does not have the published sha256 {ZIP_SHA256[name]}", "hash_mismatch"
                )
        files = gather_onnx(source, scratch)
        by_role: dict[str, dict[str, Path]] = {"detector": {}, "recogniser": {}}
        for path in files:
            role = role_of(path)
            if role:
                by_role[role].setdefault(path.name, path)
        detector_name, recogniser_name = PACK_FILES[name]
        chosen = {
            "detector": pick(by_role["detector"], "detector", detector_name),
            "recogniser": pick(by_role["recogniser"], "recogniser", recogniser_name),
        }
        checked = {}
        for path in chosen.values():
            expected = FILE_SHA256.get(path.name)
            actual = sha256_file(path)
            if expected is not None and actual != expected:
                raise PackError(
                    f"{path.name} from {origin} has sha256 {actual}, the published file has {expected}",
                    code="hash_mismatch",
                )
            checked[path.name] = expected is not None
        with staged_pack(dest_root, name, replace=force) as staging:
            entries = []
            for role in ("detector", "recogniser"):
                target = staging / chosen[role].name
                shutil.copyfile(chosen[role], target)
                entries.append(model_entry(target, role, checked))
            unverified = [f for f, ok in checked.items() if not ok]
            notes["unverified_files"] = unverified
            PackManifest(
                name=name,
                version="insightface-v0.7",
                license=LICENSE,
                source=origin,
                description=f"insightface {name}: SCRFD detector + ArcFace recogniser",
                models=entries,
                thresholds={"default": PROVISIONAL_THRESHOLD},
                notes=notes,
            ).write(staging)
    return dest_root / name
