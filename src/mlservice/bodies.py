"""Request bodies that come as JSON or as a multipart upload (the seed's POST /train and
POST /predict take both), parsed by one function and documented in the OpenAPI schema.

JSON is parsed strictly (orjson, RFC 8259) everywhere data comes in: NaN, Infinity and numbers
too large for a double are refused with 422 rather than read as missing values."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from mlservice.errors import AppError, Unprocessable

ModelT = TypeVar("ModelT", bound=BaseModel)
Upload = tuple[bytes, str | None]

# Models documented through openapi_extra; app.py adds their definitions to the components.
DOCUMENTED_MODELS: dict[str, type[BaseModel]] = {}
REF_TEMPLATE = "#/components/schemas/{model}"


class UnsupportedMediaType(AppError):
    status_code = 415
    code = "unsupported_media_type"


def documented_body(model: type[BaseModel], multipart_fields: dict[str, str] | None = None) -> dict[str, Any]:
    """The request body for openapi_extra: JSON, and a multipart upload when its fields are given."""
    DOCUMENTED_MODELS[model.__name__] = model
    json_content = {"application/json": {"schema": {"$ref": REF_TEMPLATE.format(model=model.__name__)}}}
    if multipart_fields is None:
        return {"requestBody": {"required": True, "content": json_content}}
    properties: dict[str, Any] = {"file": {"type": "string", "format": "binary", "description": "CSV, JSON, JSON Lines or Parquet"}}
    properties.update({name: {"type": "string", "description": text} for name, text in multipart_fields.items()})
    return {
        "requestBody": {
            "required": True,
            "content": {
                **json_content,
                "multipart/form-data": {"schema": {"type": "object", "properties": properties, "required": ["file"]}},
            },
        }
    }


def component_schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for name, model in DOCUMENTED_MODELS.items():
        schema = model.model_json_schema(ref_template=REF_TEMPLATE)
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
    return schemas


def validate(model: type[ModelT], payload: Any) -> ModelT:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None


JSON_FORM_FIELDS = ("features", "column_types", "params", "data")


async def json_or_multipart(request: Request) -> tuple[dict[str, Any], Upload | None]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=50)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Unprocessable("multipart body needs a 'file' field with the data", code="missing_file")
        payload: dict[str, Any] = {}
        for name, value in form.items():
            if name == "file" or not isinstance(value, str):
                continue
            if name in JSON_FORM_FIELDS and value.strip():
                try:
                    payload[name] = orjson.loads(value)
                except orjson.JSONDecodeError:
                    raise Unprocessable(f"form field {name!r} must be JSON", code="invalid_json") from None
            else:
                payload[name] = value
        return payload, (await upload.read(), upload.filename)
    if content_type in ("application/json", ""):
        return _json_object(await request.body()), None
    raise UnsupportedMediaType(
        f"unsupported Content-Type {content_type!r}: send application/json or multipart/form-data"
    )


def json_body(model: type[ModelT]) -> Callable[[Request], Awaitable[ModelT]]:
    """A dependency for a JSON-only body (document it with ``documented_body(model)``)."""

    async def parse(request: Request) -> ModelT:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in ("application/json", ""):
            raise UnsupportedMediaType(f"unsupported Content-Type {content_type!r}: send application/json")
        return validate(model, _json_object(await request.body()))

    return parse


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Unprocessable(f"the body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(payload, dict):
        raise Unprocessable("the body must be a JSON object", code="invalid_json")
    return payload
