"""A gallery's policy: which faces may be enrolled, which may be identified, duplicates, ambiguity.

Defaults reject what would poison a gallery (tiny, blurred, profile faces) while accepting ordinary
photos; measured on real faces: sharp 112×112 crops score 100–600 in sharpness, a Gaussian blur of
σ = 3 px brings them to 5–15; the estimated yaw of a strong three-quarter view is 40–57°, a profile ≥ 70°.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from models.quality import FaceQuality


class EnrollRules(BaseModel):
    """Faces below these limits are rejected at enrollment (``force`` overrides)."""

    model_config = ConfigDict(extra="forbid")
    min_face_px: float = Field(default=32, ge=0, description="shorter side of the detection box, pixels")
    min_sharpness: float = Field(default=25, ge=0, description="variance of the Laplacian of the crop")
    max_yaw: float = Field(default=65, ge=0, le=90, description="degrees, |yaw| above this: profile")
    max_pitch: float = Field(default=45, ge=0, le=90, description="degrees")
    min_det_score: float = Field(default=0.6, ge=0, le=1, description="detector confidence")


class IdentifyRules(BaseModel):
    """Faces below this floor get ``low_quality`` in /identify and are not matched."""

    model_config = ConfigDict(extra="forbid")
    min_face_px: float = Field(default=16, ge=0)
    min_sharpness: float = Field(default=0, ge=0)
    max_yaw: float = Field(default=90, ge=0, le=90)
    min_det_score: float = Field(default=0, ge=0, le=1)


class GalleryPolicy(BaseModel):
    """Stored per gallery (``PUT /galleries/{g}/policy``); a gallery without one uses these defaults."""

    model_config = ConfigDict(extra="forbid")
    enroll: EnrollRules = Field(default_factory=EnrollRules)
    identify: IdentifyRules = Field(default_factory=IdentifyRules)
    duplicates: str = Field(
        default="report",
        pattern="^(report|strict|off)$",
        description="report: flag `possible_duplicate`; strict: refuse such faces; off: no check",
    )
    ambiguity_margin: float = Field(
        default=0.03, ge=0, le=1, description="top two subjects closer than this: `ambiguous`"
    )


def load_policy(stored: dict[str, Any] | None) -> GalleryPolicy:
    return GalleryPolicy.model_validate(stored or {})


def enroll_rejection(q: FaceQuality, rules: EnrollRules) -> dict[str, Any] | None:
    """The first rule a face breaks at enrollment, as a rejection (code, message, quality), or None."""
    checks = [
        (
            q.size_px < rules.min_face_px,
            "too_small",
            f"the face is {q.size_px:.0f} px, below {rules.min_face_px:g} px",
        ),
        (
            q.sharpness < rules.min_sharpness,
            "blurred",
            f"sharpness {q.sharpness:.1f} is below {rules.min_sharpness:g} (blurred or out of focus)",
        ),
        (
            abs(q.yaw) > rules.max_yaw,
            "profile",
            f"yaw {q.yaw:.0f}° exceeds ±{rules.max_yaw:g}° (face turned away)",
        ),
        (abs(q.pitch) > rules.max_pitch, "pitched", f"pitch {q.pitch:.0f}° exceeds ±{rules.max_pitch:g}°"),
        (
            q.det_score < rules.min_det_score,
            "low_detector_score",
            f"detector score {q.det_score:.2f} is below {rules.min_det_score:g}",
        ),
    ]
    for failed, code, message in checks:
        if failed:
            return {
                "code": code,
                "message": message + "; send force=true to enroll anyway",
                "quality": q.to_dict(),
            }
    return None


def identify_floor(q: FaceQuality, rules: IdentifyRules) -> str | None:
    """Why a face is below the identification floor, or None."""
    if q.size_px < rules.min_face_px:
        return f"face of {q.size_px:.0f} px is below {rules.min_face_px:g} px"
    if q.sharpness < rules.min_sharpness:
        return f"sharpness {q.sharpness:.1f} is below {rules.min_sharpness:g}"
    if abs(q.yaw) > rules.max_yaw:
        return f"yaw {q.yaw:.0f}° exceeds ±{rules.max_yaw:g}°"
    if q.det_score < rules.min_det_score:
        return f"detector score {q.det_score:.2f} is below {rules.min_det_score:g}"
    return None
