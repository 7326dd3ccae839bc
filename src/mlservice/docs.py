"""The API description's security, and the Swagger UI page that can use it (issue #18).

FastAPI documents a security scheme only for dependencies that are ``fastapi.security`` classes;
ours is :func:`mlservice.auth.deps.authenticate_request`, which also reads the dashboard's cookie
and applies the CSRF guard, so the schema gets the scheme here, after generation. Which
operations need it is read from each route's dependency tree, so a new endpoint is documented
right the moment it takes ``CurrentPrincipal`` (or anything built on it), with no list to update.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute

try:  # FastAPI >= 0.16x keeps included routers lazy: app.routes holds them, not their APIRoutes
    from fastapi.routing import iter_route_contexts
except ImportError:  # older FastAPI: app.routes is already the flat list of APIRoutes

    def iter_route_contexts(routes):  # type: ignore[no-untyped-def]
        return iter(routes)

from mlservice.auth.deps import authenticate_request
from mlservice.origin import CLIENT_HEADER, DASHBOARD_CLIENT

BEARER_SCHEME = "bearerAuth"
SECURITY_SCHEMES: dict[str, Any] = {
    BEARER_SCHEME: {
        "type": "http",
        "scheme": "bearer",
        "description": (
            "A session token (POST /auth/login), an API token (POST /auth/tokens), or "
            "ML_ADMIN_API_TOKEN, sent as 'Authorization: Bearer <token>'."
        ),
    },
}
# The dashboard's httpOnly ``ml_session`` cookie is deliberately not declared: no client can set
# it from the schema (Swagger's Authorize could not either), and generators and Schemathesis
# would start sending a cookie the contract does not promise. The bearer scheme is the contract.


def requires_authentication(dependant: Dependant) -> bool:
    """Whether ``authenticate_request`` runs for this route, directly or under another
    dependency (``AdminPrincipal`` → ``require_admin`` → ``authenticate_request``)."""
    return any(
        sub.call is authenticate_request or requires_authentication(sub) for sub in dependant.dependencies
    )


def add_security(schema: dict[str, Any], routes: Iterable[Any]) -> dict[str, Any]:
    """Declare the bearer scheme and mark every operation whose route authenticates with it.

    Operations of public routes (health, register, login) get no ``security`` at all, which
    in OpenAPI means "no authentication" since no top-level ``security`` is set."""
    schema.setdefault("components", {}).setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    paths = schema.get("paths", {})
    for route in iter_route_contexts(list(routes)):
        # The effective route (prefix and router-level dependencies applied), as FastAPI's own
        # generator sees it; mounts (dashboard, docs assets) and WebSockets are not operations.
        if not isinstance(getattr(route, "original_route", route), APIRoute) or not route.include_in_schema:
            continue
        if not requires_authentication(route.dependant):
            continue
        for method in route.methods:
            operation = paths.get(route.path_format, {}).get(method.lower())
            if operation is not None:
                operation["security"] = [{BEARER_SCHEME: []}]
    return schema


def _js(value: Any) -> str:
    """A JSON literal safe inside a <script> element (no '</script>' can close it early)."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def swagger_ui_html(*, openapi_url: str, title: str, assets_url: str) -> HTMLResponse:
    """Swagger UI from this server's own assets, with two settings FastAPI's helper cannot pass
    (its ``swagger_ui_parameters`` are JSON, and a request interceptor is a JS function):

    * ``requestInterceptor`` adds ``X-ML-Client: dashboard`` to same-origin requests. In the
      Admin panel "Try it out" is authenticated by the dashboard's session cookie, and the CSRF
      guard refuses cookie-authenticated writes without that header. The guard is unchanged:
      only this page, served to an already authenticated caller on this origin, sets the header;
      another origin's page still cannot (CORS does not allow it to).
    * ``persistAuthorization``: a token pasted into Authorize survives a reload.
    """
    parameters = {
        "url": openapi_url,
        "dom_id": "#swagger-ui",
        "layout": "BaseLayout",
        "deepLinking": True,
        "showExtensions": True,
        "showCommonExtensions": True,
        "persistAuthorization": True,
    }
    return HTMLResponse(f"""<!DOCTYPE html>
<html>
<head>
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link type="text/css" rel="stylesheet" href="{assets_url}/swagger-ui.css">
<link rel="shortcut icon" href="{assets_url}/favicon.png">
<title>{title}</title>
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets_url}/swagger-ui-bundle.js"></script>
<script>
const ui = SwaggerUIBundle(Object.assign({_js(parameters)}, {{
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  requestInterceptor: (request) => {{
    // Same origin only: the header means "the dashboard of this server sent this".
    if (new URL(request.url, window.location.href).origin === window.location.origin) {{
      request.headers[{_js(CLIENT_HEADER)}] = {_js(DASHBOARD_CLIENT)};
    }}
    return request;
  }},
}}));
</script>
</body>
</html>
""")
