"""Request bodies that come as JSON or as a multipart upload (POST /train and POST /predict take
both, as 0.11.2 did), parsed by one function and documented in the OpenAPI schema. Both read
the body's pydantic model: which form fields hold JSON, and which fields a form documents, are
derived from it, so a field is declared once, in the owning domain's schema.

JSON is parsed strictly (orjson, RFC 8259) everywhere data comes in: NaN, Infinity and numbers
too large for a double are refused with 422 rather than read as missing values."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
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


def documented_body(model: type[BaseModel], *, upload: bool = False) -> dict[str, Any]:
    """The request body for openapi_extra: JSON, and with ``upload`` a multipart form too (the
    file, and the model's fields other than those the file stands for)."""
    DOCUMENTED_MODELS[model.__name__] = model
    json_content = {"application/json": {"schema": {"$ref": REF_TEMPLATE.format(model=model.__name__)}}}
    if not upload:
        return {"requestBody": {"required": True, "content": json_content}}
    properties: dict[str, Any] = {"file": {"type": "string", "format": "binary", "description": "CSV, JSON, JSON Lines or Parquet"}}
    properties.update({name: {"type": "string", "description": _form_description(name, field)}
                       for name, field in model.model_fields.items() if name not in UPLOAD_REPLACES})
    return {
        "requestBody": {
            "required": True,
            "content": {
                **json_content,
                "multipart/form-data": {"schema": {"type": "object", "properties": properties, "required": ["file"]}},
            },
        }
    }


# What an uploaded file stands for in every body that takes one: the data, as records or a dataset.
UPLOAD_REPLACES = frozenset({"data", "dataset_id"})
_TEXT = (str, str | None)


def _is_json(field: FieldInfo) -> bool:
    """A form field carries text; any other type of value comes as JSON in it."""
    return field.annotation not in _TEXT


def _form_description(name: str, field: FieldInfo) -> str:
    text = field.description or name.replace("_", " ")
    text = f"{text}, as JSON" if _is_json(field) else text
    return text if field.is_required() else f"{text} (optional)"


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


def json_or_multipart(model: type[ModelT]) -> Callable[[Request], Awaitable[tuple[ModelT, Upload | None]]]:
    """A dependency for a body that is JSON, or a multipart form with a file (document it with
    ``documented_body(model, upload=True)``): the validated model and the upload, if any."""
    json_fields = frozenset(name for name, field in model.model_fields.items() if _is_json(field))

    async def parse(request: Request) -> tuple[ModelT, Upload | None]:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "multipart/form-data":
            payload, upload = await _form(request, json_fields)
            return validate(model, payload), upload
        if content_type in ("application/json", ""):
            return validate(model, _json_object(await request.body())), None
        raise UnsupportedMediaType(
            f"unsupported Content-Type {content_type!r}: send application/json or multipart/form-data"
        )

    return parse


async def _form(request: Request, json_fields: frozenset[str]) -> tuple[dict[str, Any], Upload]:
    form = await request.form(max_files=1, max_fields=50)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise Unprocessable("multipart body needs a 'file' field with the data", code="missing_file")
    payload: dict[str, Any] = {}
    for name, value in form.items():
        if name == "file" or not isinstance(value, str):
            continue
        if name in json_fields and value.strip():
            try:
                payload[name] = orjson.loads(value)
            except orjson.JSONDecodeError:
                raise Unprocessable(f"form field {name!r} must be JSON", code="invalid_json") from None
        else:
            payload[name] = value
    return payload, (await upload.read(), upload.filename)


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
