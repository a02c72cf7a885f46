"""Model packs: a folder with ``pack.json`` describing a detector and a recogniser."""

from models.packs.manifest import MANIFEST_NAME, ModelEntry, PackManifest, Threshold

__all__ = ["MANIFEST_NAME", "ModelEntry", "PackManifest", "Threshold"]
