"""Request bodies of the image routes: multipart files or base64 strings in JSON, with the same names."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from app.errors import ApiError
from app.services.enrollment import ImageInput

Model = TypeVar("Model", bound=BaseModel)


@dataclass
class Payload:
    """Non-image fields (strings from forms, JSON values from JSON) and images by field name."""

    fields: dict[str, Any] = field(default_factory=dict)
    images: dict[str, list[ImageInput]] = field(default_factory=dict)

    def image(self, name: str) -> ImageInput:
        found = self.images.get(name) or []
        if not found:
            raise ApiError(422, "missing_image", f"the request has no image in field {name!r}")
        if len(found) > 1:
            raise ApiError(422, "invalid_request", f"field {name!r} takes one image, got {len(found)}")
        return found[0]

    def parse(self, model: type[Model]) -> Model:
        try:
            return model.model_validate(self.fields)
        except ValidationError as exc:
            problems = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()]
            raise ApiError(422, "invalid_request", "; ".join(problems)) from None


def decode_base64(value: object, field_name: str) -> bytes:
    """Strict base64 (a ``data:...;base64,`` prefix is allowed)."""
    if not isinstance(value, str):
        raise ApiError(422, "invalid_request", f"{field_name}: expected a base64 string")
    text = value.strip()
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "bad_base64", f"{field_name}: not valid base64") from None


async def read_payload(request: Request, image_fields: set[str], max_images: int) -> Payload:
    """Read a multipart or JSON body; images land in ``images``, everything else in ``fields``."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        return await _read_multipart(request, image_fields, max_images)
    if content_type in ("application/json", ""):
        return await _read_json(request, image_fields, max_images)
    raise ApiError(
        415, "unsupported_media_type", "send multipart/form-data (files) or application/json (base64 images)"
    )


async def _read_multipart(request: Request, image_fields: set[str], max_images: int) -> Payload:
    try:
        form = await request.form(max_files=max_images, max_fields=64)
    except ApiError:
        raise
    except Exception as exc:  # noqa: BLE001 - malformed multipart bodies raise various parser errors
        if getattr(exc, "status_code", None) == 413:
            raise
        if "Too many files" in str(exc):
            raise ApiError(413, "too_many_images", f"at most {max_images} images per request") from None
        raise ApiError(400, "bad_multipart", f"the multipart body cannot be read: {exc}") from None
    payload = Payload()
    try:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if key not in image_fields:
                    raise ApiError(422, "invalid_request", f"unexpected file field {key!r}")
                data = await value.read()
                payload.images.setdefault(key, []).append(ImageInput(data, value.filename))
            elif key in image_fields:
                payload.images.setdefault(key, []).append(ImageInput(decode_base64(value, key), None))
            else:
                payload.fields[key] = value
    finally:
        await form.close()
    _check_count(payload, max_images)
    return payload


async def _read_json(request: Request, image_fields: set[str], max_images: int) -> Payload:
    body = await request.body()
    if not body:
        raise ApiError(
            422, "missing_image", "empty request body: send images as multipart files or base64 JSON"
        )
    # Parsing and base64-decoding up to max_request_bytes takes tens of ms: off the event loop.
    return await asyncio.to_thread(_parse_json, body, image_fields, max_images)


def _parse_json(body: bytes, image_fields: set[str], max_images: int) -> Payload:
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
    except RecursionError:
        raise ApiError(400, "invalid_json", "the JSON body is nested too deeply") from None
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_request", "the JSON body must be an object")
    payload = Payload()
    for key, value in data.items():
        if key not in image_fields:
            payload.fields[key] = value
            continue
        values = value if isinstance(value, list) else [value]
        if len(values) > max_images:
            raise ApiError(413, "too_many_images", f"at most {max_images} images per request")
        payload.images[key] = [ImageInput(decode_base64(v, key), None) for v in values]
    _check_count(payload, max_images)
    return payload


def _check_count(payload: Payload, max_images: int) -> None:
    count = sum(len(v) for v in payload.images.values())
    if count > max_images:
        raise ApiError(413, "too_many_images", f"{count} images sent; at most {max_images} per request")


def image_body_openapi(images: dict[str, str], fields: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """OpenAPI requestBody for a route that takes files (multipart) or base64 strings (JSON)."""
    file_props = {
        name: {"type": "string", "format": "binary", "description": d} for name, d in images.items()
    }
    b64_props = {name: {"type": "string", "format": "byte", "description": d} for name, d in images.items()}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": {"type": "object", "properties": file_props | fields}},
                "application/json": {"schema": {"type": "object", "properties": b64_props | fields}},
            },
        }
    }
