"""Checkpoints: atomic writes (temp file + rename), rotation of step files, RNG state capture/restore.

Keys (the export engineer relies on them): ``backbone`` (state_dict), ``config`` (the full config dict,
with ``backbone``, ``embedding_size``, ``loss``), ``loss`` (head state incl. weight and buffers),
``optimizer``, ``scheduler``, ``scaler``, ``step``, ``epoch``, ``batch_in_epoch``, ``rng``, ``eval``,
``best_metric``.
"""

from __future__ import annotations

import os
import pickle
import random
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.errors import MarginFaceError

STEP_FILE = re.compile(r"^step_(\d{6,})\.pt$")


class CheckpointError(MarginFaceError):
    """A checkpoint that cannot be read or lacks what is needed.

    Codes: ``bad_checkpoint``, ``checkpoint_not_found``.
    """

    code = "bad_checkpoint"


def capture_rng() -> dict[str, Any]:
    """Every generator's state as tensors and plain numbers, so ``torch.load(weights_only=True)`` reads it."""
    version, words, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": version, "state": torch.tensor(words, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of ``capture_rng`` (also reads the tuple layout of checkpoints written before it)."""
    py, npy = state["python"], state["numpy"]
    if isinstance(py, dict):
        py = (py["version"], tuple(int(w) for w in py["state"].tolist()), py["gauss"])
    if isinstance(npy, dict):
        keys = npy["keys"].numpy().astype(np.uint32)
        npy = ("MT19937", keys, npy["pos"], npy["has_gauss"], npy["cached_gaussian"])
    random.setstate(py)
    np.random.set_state(npy)
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_save(obj: Any, path: Path) -> None:
    """Write to a temp file in the same folder, fsync, then rename: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_step_checkpoint(state: dict[str, Any], out_dir: Path, keep_last: int) -> Path:
    """Write ``step_XXXXXX.pt`` and ``checkpoint_last.pt``; keep only the newest ``keep_last`` step files."""
    step_path = out_dir / f"step_{state['step']:06d}.pt"
    atomic_save(state, step_path)
    atomic_save(state, out_dir / "checkpoint_last.pt")
    steps = sorted(p for p in out_dir.iterdir() if STEP_FILE.match(p.name))
    for old in steps[:-keep_last]:
        old.unlink(missing_ok=True)
    return step_path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint_last.pt"
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}", code="checkpoint_not_found")
    try:
        # weights_only: tensors and plain containers only, never arbitrary objects (a checkpoint is a file
        # from anywhere). numpy arrays are allowed for checkpoints written before RNG state became tensors.
        with torch.serialization.safe_globals(_NUMPY_ARRAY_GLOBALS):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file, or one that pickles code
        raise CheckpointError(f"cannot read checkpoint {path}: {_first_line(exc)}") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a MarginFace checkpoint (not a dict)")
    missing = [k for k in ("backbone", "config") if k not in state]
    if missing:
        raise CheckpointError(f"{path} is not a MarginFace checkpoint (missing {', '.join(missing)})")
    return state


def _numpy_array_globals() -> list[Any]:
    """What unpickling a numpy array needs (data only: no callables beyond the array constructor)."""
    multiarray = getattr(np, "_core", None) or np.core
    found: list[Any] = [np.ndarray, np.dtype, multiarray.multiarray._reconstruct]
    found += [type(np.dtype(t)) for t in ("uint32", "int64", "float64", "float32", "uint8")]
    return found


_NUMPY_ARRAY_GLOBALS = _numpy_array_globals()


def _first_line(exc: Exception) -> str:
    if isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in str(exc):
        return "it pickles objects other than tensors and plain data (refused: loading them could run code)"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
