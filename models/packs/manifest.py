"""The ``pack.json`` schema.

A pack is a folder holding ONNX files and this manifest. Each model entry says how to run the file
(format, input size, colour order, normalisation) so that nothing is guessed at run time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models.errors import PackError

MANIFEST_NAME = "pack.json"
SCHEMA_VERSION = 1


class Threshold(BaseModel):
    """A recommended cosine-similarity threshold and where it came from."""

    model_config = ConfigDict(extra="forbid")

    value: float = Field(ge=-1.0, le=1.0)
    far: float | None = Field(default=None, description="false accept rate this threshold was set at")
    source: str = Field(description="how the number was obtained (dataset, protocol, publication)")


class ModelEntry(BaseModel):
    """One ONNX model inside a pack."""

    model_config = ConfigDict(extra="allow")

    file: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    role: Literal["detector", "recogniser"]
    format: Literal["scrfd", "yunet", "arcface"]
    input_size: tuple[int, int] | None = Field(
        default=None, description="(width, height) the model takes; None where any size works"
    )
    color_order: Literal["RGB", "BGR"] = "RGB"
    mean: tuple[float, float, float] = (127.5, 127.5, 127.5)
    std: tuple[float, float, float] = (127.5, 127.5, 127.5)
    embedding_size: int | None = None
    dynamic_batch: bool = False
    original_sha256: str | None = Field(
        default=None, description="hash of the file as published, when the stored file was repaired"
    )


class PackManifest(BaseModel):
    """The whole ``pack.json``."""

    model_config = ConfigDict(extra="allow")

    schema_version: int = SCHEMA_VERSION
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    version: str
    license: str
    source: str
    description: str = ""
    models: list[ModelEntry]
    thresholds: dict[str, Threshold] = Field(
        default_factory=dict, description="named cosine thresholds; 'default' is used unless told otherwise"
    )
    notes: dict[str, object] = Field(default_factory=dict)

    def model(self, role: Literal["detector", "recogniser"]) -> ModelEntry:
        """The first model with ``role``; raises PackError when the pack has none."""
        for entry in self.models:
            if entry.role == role:
                return entry
        raise PackError(f"pack {self.name!r} has no {role}", code="bad_manifest")

    @property
    def default_threshold(self) -> float:
        if "default" in self.thresholds:
            return self.thresholds["default"].value
        if self.thresholds:
            return next(iter(self.thresholds.values())).value
        raise PackError(f"pack {self.name!r} declares no threshold", code="bad_manifest")

    @classmethod
    def read(cls, pack_dir: Path) -> PackManifest:
        """Parse ``pack_dir/pack.json``; a missing or malformed manifest raises PackError."""
        path = Path(pack_dir) / MANIFEST_NAME
        if not path.is_file():
            raise PackError(f"no {MANIFEST_NAME} in {pack_dir}", code="bad_manifest")
        try:
            return cls.model_validate(json.loads(path.read_text()))
        except (ValueError, ValidationError) as exc:
            raise PackError(f"invalid {path}: {exc}", code="bad_manifest") from exc

    def write(self, pack_dir: Path) -> Path:
        path = Path(pack_dir) / MANIFEST_NAME
        path.write_text(self.model_dump_json(indent=2, exclude_none=True) + "\n")
        return path
