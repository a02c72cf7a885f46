"""Response models of the trust features (OpenAPI documentation of every new field).

``FaceTrustFields`` and ``IdentifyTrustFields`` are the fields /identify gains per face and per answer;
the identify route's own response model (app/api/schemas.py) can include them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class QualityOut(BaseModel):
    size_px: float = Field(description="shorter side of the detection box, pixels")
    sharpness: float = Field(description="variance of the Laplacian of the grey 112×112 aligned crop")
    yaw: float = Field(description="degrees, estimated from the 5 landmarks; ±90 = profile")
    pitch: float = Field(description="degrees, estimated from the 5 landmarks")
    roll: float = Field(description="degrees, angle of the eye line")
    det_score: float = Field(description="detector confidence")
    recognisability: float | None = Field(
        default=None, description="feature norm where the pack provides one (MagFace/AdaFace); else null"
    )


class DecisionDetails(_Open):
    threshold: float = Field(description="the similarity threshold applied")
    top_similarity: float | None = Field(description="similarity of the best candidate")
    reason: str = Field(description="why this decision, in words")
    margin: float | None = Field(default=None, description="chosen subject minus the runner-up")
    second: dict | None = Field(default=None, description="the runner-up (ambiguous): subject_id, similarity")
    negative_similarity: float | None = Field(
        default=None, description="similarity to the closest negative example that vetoed the top subject"
    )
    reassigned_from: dict | None = Field(
        default=None, description="the face's top subject when another face of the photo took it"
    )
    assigned_to_face: int | None = Field(default=None, description="the face of this photo that took it")


class FaceTrustFields(BaseModel):
    decision: str = Field(description="match | unknown | ambiguous | low_quality")
    decision_details: DecisionDetails
    quality: QualityOut
    probe_id: str = Field(description="send to POST .../negatives as `probe_id` to say: not this person")


class CalibrationSummary(BaseModel):
    target_fpir: float | None
    calibrated_threshold: float | None
    calibrated_subjects: int | None
    subjects_now: int
    recalibrate: bool = Field(description="the gallery grew past the calibration's growth limit")


class IdentifyTrustFields(BaseModel):
    threshold_source: str = Field(description="request | calibration | pack")
    calibration: CalibrationSummary | None = None


class GrowthOut(BaseModel):
    model: str
    slope: float = Field(description="threshold change per unit of ln(subjects_now / reference_subjects)")
    reference_subjects: int
    recalibrate_above_subjects: int


class VerifyCalibrationOut(_Open):
    target_far: float
    threshold: float = Field(description="1:1 threshold used by /verify with gallery + subject")
    method: str
    impostor_comparisons: int
    threshold_ci95: list[float]


class CalibrationOut(_Open):
    """A gallery's calibration record (also shown as ``calibration`` by ``GET /galleries/{g}``)."""

    target_fpir: float
    threshold: float = Field(description="identification threshold at the gallery's size when calibrated")
    method: str = Field(description="empirical (order statistics) or tail (exponential extrapolation)")
    gallery_subjects: int
    threshold_ci95: list[float] = Field(description="bootstrap 95% interval over the non-mated probes")
    fpir_on_calibration: dict = Field(description="FPIR measured at the threshold on the calibration probes")
    fnir_on_calibration: dict | None = Field(default=None, description="FNIR of mated calibration probes")
    samples: dict = Field(description="non-mated and mated probe counts, impostor comparisons, sources")
    growth: GrowthOut
    verify: VerifyCalibrationOut
    pack: dict
    created_at: str
    warning: str | None = Field(default=None, description="set when the probes were too few for the target")


class CalibrateResponse(CalibrationOut):
    stored: bool = Field(description="false for dry_run: the gallery keeps its previous calibration")



class NegativeOut(_Open):
    id: int
    subject_id: int
    source: str | None = None
    face_id: int | None = None
    created_at: str | None = None


class NegativeList(BaseModel):
    negatives: list[NegativeOut]


class DuplicateOut(BaseModel):
    subject_id: int = Field(description="the other subject this face matches")
    name: str
    similarity: float = Field(description="at or above the gallery's threshold")
    face_id: int = Field(description="that subject's closest enrolled face")


class GalleryCalibrationOut(CalibrationOut):
    """The stored calibration as ``GET /galleries/{g}`` shows it, with the threshold in force now."""

    threshold_now: float = Field(description="threshold moved to the current size by the growth model")
    subjects_now: int
    recalibrate: bool = Field(description="the gallery has grown past recalibrate_above_subjects")
    applies: bool = Field(description="false when the gallery's pack version differs from the calibration's")
