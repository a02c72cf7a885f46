"""The official LFW pairs file (``pairs.txt``) and image layout."""

from __future__ import annotations

from pathlib import Path

from models.errors import MarginFaceError


def lfw_image_path(images_dir: str | Path, name: str, number: int, ext: str = "jpg") -> Path:
    """``<images>/<Name>/<Name>_<NNNN>.jpg``."""
    return Path(images_dir) / name / f"{name}_{int(number):04d}.{ext}"


def read_pairs(
    pairs_txt: str | Path, images_dir: str | Path | None = None
) -> list[tuple[Path, Path, bool, int]]:
    """``(path1, path2, issame, fold)`` for every pair of an LFW-format pairs file.

    The header is ``<folds> <n>``; each fold then holds n matched lines ``name i j`` and n mismatched lines
    ``name1 i name2 j``. Paths are under ``images_dir`` (default: the pairs file's folder).
    """
    pairs_txt = Path(pairs_txt)
    images_dir = Path(images_dir) if images_dir is not None else pairs_txt.parent
    try:
        lines = [line.split() for line in pairs_txt.read_text().splitlines() if line.strip()]
    except OSError as exc:
        raise MarginFaceError(f"cannot read {pairs_txt}: {exc}", code="bad_pairs_file") from exc
    try:
        n_folds, per_fold = int(lines[0][0]), int(lines[0][1])
    except (IndexError, ValueError) as exc:
        raise MarginFaceError(
            f"{pairs_txt}: the first line must be '<folds> <pairs per fold>'", code="bad_pairs_file"
        ) from exc
    body = lines[1:]
    if len(body) != n_folds * 2 * per_fold:
        raise MarginFaceError(
            f"{pairs_txt}: header says {n_folds}×2×{per_fold} pairs, found {len(body)} lines",
            code="bad_pairs_file",
        )
    pairs = []
    for index, fields in enumerate(body):
        fold = index // (2 * per_fold)
        try:
            if len(fields) == 3:
                name, i, j = fields
                pairs.append(
                    (
                        lfw_image_path(images_dir, name, int(i)),
                        lfw_image_path(images_dir, name, int(j)),
                        True,
                        fold,
                    )
                )
            elif len(fields) == 4:
                name1, i, name2, j = fields
                pairs.append(
                    (
                        lfw_image_path(images_dir, name1, int(i)),
                        lfw_image_path(images_dir, name2, int(j)),
                        False,
                        fold,
                    )
                )
            else:
                raise ValueError("expected 3 or 4 fields")
        except ValueError as exc:
            raise MarginFaceError(
                f"{pairs_txt}:{index + 2}: bad pair line {' '.join(fields)!r}: {exc}", code="bad_pairs_file"
            ) from exc
    return pairs
