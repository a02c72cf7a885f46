"""Pack a folder of aligned crops into insightface RecordIO (``marginface data pack``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from training.data.errors import DatasetError
from training.data.folder import scan_identity_folders
from training.data.images import CROP_SIZE, check_crop, decode_bgr, encode_image
from training.data.recordio import write_recordio

_STORED_AS_IS = {".jpg", ".jpeg", ".png"}


def pack_image_folder(
    root: str | Path, out_dir: str | Path, name: str = "train", progress: bool = True
) -> dict[str, Any]:
    """``root/<identity>/*`` → ``out_dir/<name>.rec`` + ``.idx`` (+ ``<name>.classes.txt``, one name a line).

    JPEG/PNG crops are stored byte for byte (no re-encoding); other formats become JPEG (quality 95).
    Every image is decoded once to check it is a 112×112 crop.
    """
    from tqdm import tqdm

    classes, samples = scan_identity_folders(root)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rec_path, idx_path = out_dir / f"{name}.rec", out_dir / f"{name}.idx"
    if Path(root).resolve() in rec_path.resolve().parents:
        raise DatasetError(f"write the .rec outside the image folder {root}", "bad_output")

    def items() -> Iterator[tuple[bytes, int]]:
        for path, label in tqdm(samples, desc="packing", unit="img", disable=not progress):
            data = path.read_bytes()
            image = check_crop(decode_bgr(data, str(path)), str(path))
            if path.suffix.lower() not in _STORED_AS_IS:
                data = encode_image(image, ".jpg", 95)
            yield data, label

    images, identities = write_recordio(rec_path, idx_path, items())
    (out_dir / f"{name}.classes.txt").write_text("".join(f"{c}\n" for c in classes))
    return {
        "rec": str(rec_path),
        "idx": str(idx_path),
        "images": images,
        "identities": identities,
        "crop_size": CROP_SIZE,
        "bytes": rec_path.stat().st_size,
    }
