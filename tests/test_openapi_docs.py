"""The API description declares its bearer scheme, and Swagger UI can use it (issue #18)."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient

from mlservice.auth.deps import AdminPrincipal, CurrentPrincipal, SystemAdminPrincipal
from mlservice.docs import BEARER_SCHEME, add_security
from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME
from tests.helpers import login

PUBLIC = {"GET /health", "POST /auth/register", "POST /auth/login"}


def _operations(schema: dict) -> dict[str, dict]:
    return {f"{method.upper()} {path}": op for path, methods in schema["paths"].items() for method, op in methods.items()}


def test_schema_declares_the_bearer_scheme_and_marks_every_protected_operation(client: TestClient) -> None:
    schema = client.get("/openapi.json", headers=login(client, ADMIN_USERNAME, ADMIN_PASSWORD)).json()
    scheme = schema["components"]["securitySchemes"][BEARER_SCHEME]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    for credential in ("session token", "API token", "ML_ADMIN_API_TOKEN"):
        assert credential in scheme["description"]
    assert "security" not in schema  # no global requirement: the public operations stay public
    operations = _operations(schema)
    assert {name for name, op in operations.items() if "security" not in op} == PUBLIC
    assert len(operations) > 40  # every router is in the schema, not only a few
    for name, op in operations.items():
        if name not in PUBLIC:
            assert op["security"] == [{BEARER_SCHEME: []}], name


def test_protection_is_read_from_the_route_dependencies() -> None:
    """No list to keep in step: any route that (indirectly) authenticates gets the scheme."""
    app = FastAPI()

    @app.get("/open")
    def open_route() -> dict:
        return {}

    @app.get("/signed-in")
    def signed_in(_p: CurrentPrincipal) -> dict:
        return {}

    @app.post("/admin")
    def admin(_p: AdminPrincipal) -> dict:
        return {}

    @app.delete("/system")
    def system(_p: SystemAdminPrincipal) -> dict:
        return {}

    schema = add_security(app.openapi(), app.routes)
    operations = _operations(schema)
    assert "security" not in operations["GET /open"]
    for name in ("GET /signed-in", "POST /admin", "DELETE /system"):
        assert operations[name]["security"] == [{BEARER_SCHEME: []}], name


def test_swagger_ui_loads_the_schema_with_the_scheme_and_can_write_with_the_cookie(client: TestClient) -> None:
    headers = login(client, ADMIN_USERNAME, ADMIN_PASSWORD)
    html = client.get("/docs", headers=headers).text
    url = re.search(r'"url": "([^"]+)"', html).group(1)
    served = client.get(url, headers=headers)
    assert served.status_code == 200
    assert BEARER_SCHEME in served.json()["components"]["securitySchemes"]
    # Authorize survives reloads, and the page names itself as the dashboard on its own origin.
    assert '"persistAuthorization": true' in html
    assert "requestInterceptor" in html and '"x-ml-client"' in html and '"dashboard"' in html
    assert "window.location.origin" in html

    # What the interceptor makes possible, and why it is needed: the CSRF guard is unchanged.
    answer = client.post("/auth/login", json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD})
    assert answer.status_code == 200 and client.cookies.get("ml_session")
    refused = client.post("/auth/tokens", json={"name": "from swagger"})
    assert refused.status_code == 403 and "x-ml-client" in refused.text.lower()
    created = client.post("/auth/tokens", json={"name": "from swagger"}, headers={"X-ML-Client": "dashboard"})
    assert created.status_code == 201, created.text
    client.cookies.clear()
