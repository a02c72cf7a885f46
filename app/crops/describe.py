"""What ``GET /galleries/{g}`` says about a gallery's life across models: its crops and any migration."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from app.crops.repository import CropRepository
from app.crops.service import CropService
from app.store.models import Gallery


def lifecycle_description(engine: Engine, gallery: Gallery) -> dict[str, Any]:
    """``{"crops": {...}, "migration": {...} | None}`` for the gallery description."""
    from app.gallery_migration.repository import MigrationRepository

    return {
        "crops": CropService(CropRepository(engine)).status(gallery),
        "migration": MigrationRepository(engine).describe(gallery.id),
    }
