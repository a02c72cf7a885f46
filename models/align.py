"""Five-point face alignment to the ArcFace 112×112 template (similarity transform, Umeyama)."""

from __future__ import annotations

import cv2
import numpy as np

from models.errors import MarginFaceError

ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)


def template(size: int = 112) -> np.ndarray:
    """The template for a ``size``×``size`` crop, scaled as insightface does (×size/112, or ×size/128
    with an 8-pixel x shift for multiples of 128)."""
    if size % 112 == 0:
        return (ARCFACE_TEMPLATE * (size / 112.0)).astype(np.float64)
    if size % 128 == 0:
        ratio = size / 128.0
        dst = ARCFACE_TEMPLATE.astype(np.float64) * ratio
        dst[:, 0] += 8.0 * ratio
        return dst
    raise ValueError(f"crop size must be a multiple of 112 or 128, got {size}")


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """3×3 least-squares similarity transform mapping ``src`` points onto ``dst`` (Umeyama 1991)."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    dim = src.shape[1]
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / src.shape[0]
    d = np.ones(dim)
    if np.linalg.det(cov) < 0:
        d[-1] = -1
    u, s, vt = np.linalg.svd(cov)
    rank = np.linalg.matrix_rank(cov)
    transform = np.eye(dim + 1)
    if rank == 0:
        return np.full((dim + 1, dim + 1), np.nan)
    if rank == dim - 1:
        if np.linalg.det(u) * np.linalg.det(vt) > 0:
            transform[:dim, :dim] = u @ vt
        else:
            sign = d[-1]
            d[-1] = -1
            transform[:dim, :dim] = u @ np.diag(d) @ vt
            d[-1] = sign
    else:
        transform[:dim, :dim] = u @ np.diag(d) @ vt
    scale = 1.0 / src_c.var(axis=0).sum() * (s @ d)
    transform[:dim, dim] = dst_mean - scale * (transform[:dim, :dim] @ src_mean)
    transform[:dim, :dim] *= scale
    return transform


def estimate_norm(landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """2×3 matrix mapping the five detected landmarks onto the template of a ``size`` crop."""
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (5, 2) or not np.all(np.isfinite(points)):
        raise MarginFaceError("alignment needs five finite (x, y) landmarks", code="bad_landmarks")
    return umeyama(points, template(size))[:2]


def norm_crop(image: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """The aligned ``size``×``size`` crop (bilinear warp, black border), same layout as ``image``."""
    matrix = estimate_norm(landmarks, size)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0.0)


def norm_crops(image: np.ndarray, landmarks: list[np.ndarray] | np.ndarray, size: int = 112) -> np.ndarray:
    """Aligned crops for several faces of one image as an N×size×size×C array."""
    crops = [norm_crop(image, points, size) for points in landmarks]
    if not crops:
        return np.zeros((0, size, size) + image.shape[2:], dtype=image.dtype)
    return np.stack(crops)
