"""A NUL character in any query parameter (naming it) or in the path answers 422 `invalid_value`,
alike on SQLite (which would compare it and find nothing) and PostgreSQL (which refuses it in a
query). Every text parameter of every operation in the OpenAPI schema is tried, so a filter added
later is covered without being listed here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient

from tests.helpers import Accounts

NUL_VALUE = "a\x00b"
# The text filters of the lists: the enumeration must find at least these.
KNOWN_FILTERS = {
    ("/jobs", "model_key"),
    ("/events", "type"),
    ("/events", "username"),
    ("/events", "ip"),
    ("/events", "model_key"),
    ("/events", "job_id"),
    ("/events/suspicious", "username"),
    ("/drift/daily-reports", "model_key"),
    ("/health/alerts", "kind"),
    ("/health/alerts", "model_key"),
}


def _branches(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return schema.get("anyOf", [schema])


def takes_text(schema: dict[str, Any]) -> bool:
    """A parameter a client can send any text in (a NUL among it), enums and dates included."""
    return any(branch.get("type") == "string" or "$ref" in branch for branch in _branches(schema))


def free_text(schema: dict[str, Any]) -> bool:
    """Text with no format of its own: any other value is a valid filter."""
    return any(
        branch.get("type") == "string" and not {"enum", "format", "pattern"} & set(branch)
        for branch in _branches(schema)
    )


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, list[dict[str, Any]]]]:
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            parameters = [
                p for p in operation.get("parameters", []) if p["in"] in ("query", "path")
            ]
            yield method.upper(), path, parameters


def url(path: str, parameters: list[dict[str, Any]], nul_in: str | None = None) -> str:
    for parameter in parameters:
        if parameter["in"] == "path":
            integer = any(b.get("type") == "integer" for b in _branches(parameter["schema"]))
            value = "a%00b" if parameter["name"] == nul_in else "1" if integer else "x"
            path = path.replace("{" + parameter["name"] + "}", value)
    return path


def test_nul_in_any_url_parameter_is_refused_alike_on_both_backends(
    client: TestClient, accounts: Accounts
) -> None:
    admin = accounts.system_admin
    tried: set[tuple[str, str]] = set()
    for method, path, parameters in operations(client.app.openapi()):
        for parameter in parameters:
            if not takes_text(parameter["schema"]):
                continue
            name, where = parameter["name"], parameter["in"]
            params = {name: NUL_VALUE} if where == "query" else None
            target = url(path, parameters, nul_in=name if where == "path" else None)
            response = client.request(method, target, params=params, headers=admin)
            label = f"{method} {path} {where} {name}"
            assert response.status_code == 422, (label, response.status_code, response.text[:300])
            error = response.json()["error"]
            assert error["code"] == "invalid_value", (label, error)
            field, named = (
                (f"query.{name}", f"query parameter '{name}'")
                if where == "query"
                else ("path", "the path")
            )
            assert error["message"] == f"{named} cannot contain the NUL character (\\x00)", (
                label,
                error,
            )
            assert error["details"] == [
                {"field": field, "message": "cannot contain the NUL character"}
            ], label
            tried.add((path, name))
            if (
                method == "GET"
                and where == "query"
                and "{" not in path
                and free_text(parameter["schema"])
            ):
                control = client.get(
                    path, params={name: "ab"}, headers=admin
                )  # the same filter, no NUL
                assert control.status_code == 200, (label, control.status_code, control.text[:300])
    assert KNOWN_FILTERS <= tried, KNOWN_FILTERS - tried
    assert {("/jobs/{job_id}", "job_id"), ("/models/{model_key}", "model_key")} <= tried


def test_the_message_names_the_first_bad_parameter_and_lists_all(
    client: TestClient, accounts: Accounts
) -> None:
    response = client.get(
        "/events/by-ip/a%00b",
        params=[("username", "ok"), ("ip", "1.2.3.4\x00"), ("job_id", "\x00")],
        headers=accounts.system_admin,
    )
    assert response.status_code == 422, response.text
    assert response.headers["x-content-type-options"] == "nosniff", "an answer like any other"
    error = response.json()["error"]
    assert error["message"] == "query parameter 'ip' cannot contain the NUL character (\\x00)"
    assert [d["field"] for d in error["details"]] == ["query.ip", "query.job_id", "path"]
    # Without a NUL, the same escapes are text like any other.
    assert (
        client.get("/jobs", params={"model_key": "%00"}, headers=accounts.system_admin).status_code
        == 200
    )
    # A NUL in a parameter's name is shown escaped, never echoed raw.
    odd = client.get("/jobs", params={"model\x00key": "x"}, headers=accounts.system_admin)
    assert odd.status_code == 422 and "model\\x00key" in odd.json()["error"]["message"], odd.text
    assert "\\u0000" not in odd.text and "\x00" not in odd.text
