"""Cross-cutting behaviour of the HTTP application: docs, errors, limits, the dashboard."""

from __future__ import annotations

from fastapi.testclient import TestClient

from mlservice.app import create_app
from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, make_settings
from tests.helpers import login


def test_docs_require_authentication(client: TestClient) -> None:
    for path in ("/docs", "/redoc", "/openapi.json"):
        response = client.get(path)
        assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
    headers = login(client, ADMIN_USERNAME, ADMIN_PASSWORD)
    schema = client.get("/openapi.json", headers=headers).json()
    assert "/auth/login" in schema["paths"] and "/health" in schema["paths"]
    assert "swagger" in client.get("/docs", headers=headers).text.lower()
    assert "redoc" in client.get("/redoc", headers=headers).text.lower()


def test_docs_pages_load_everything_from_this_server(client: TestClient) -> None:
    """A self-hosted box is often offline: the docs pages must not need a CDN."""
    import re

    headers = login(client, ADMIN_USERNAME, ADMIN_PASSWORD)
    for page, wanted in (("/docs", "SwaggerUIBundle"), ("/redoc", "Redoc")):
        html = client.get(page, headers=headers).text
        urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html) + re.findall(r"url: '([^']+)'", html)
        assert urls, html
        assert not [url for url in urls if "//" in url], f"{page} loads from elsewhere: {urls}"
        scripts = [url for url in urls if url.endswith(".js")]
        assert scripts, urls
        for url in scripts + [url for url in urls if url.endswith((".css", ".png"))]:
            asset = client.get(url)  # public library bundles: no token needed
            assert asset.status_code == 200 and len(asset.content) > 1000, url
        assert any(wanted in client.get(url).text for url in scripts), page


def test_unknown_routes_and_methods_use_the_error_shape(client: TestClient) -> None:
    missing = client.get("/no/such/thing")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "/no/such/thing is not an endpoint of this API"
    wrong_method = client.delete("/health")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["code"] == "method_not_allowed"


def test_oversize_bodies_are_refused_before_reading(tmp_path, database) -> None:
    settings = make_settings(tmp_path, database, max_body_mb=0.001)
    with TestClient(create_app(settings, database)) as client:
        big = '{"username": "' + "x" * 5000 + '", "password": "long-enough-1"}'
        response = client.post("/auth/register", content=big, headers={"Content-Type": "application/json"})
        assert response.status_code == 413
        assert "ML_MAX_BODY_MB" in response.json()["error"]["message"]

        def chunks():
            yield b'{"username": "'
            yield b"y" * 5000
            yield b'", "password": "long-enough-1"}'

        streamed = client.post("/auth/register", content=chunks(), headers={"Content-Type": "application/json"})
        assert streamed.status_code == 413


def test_security_headers(client: TestClient) -> None:
    headers = client.get("/health").headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"


def test_dashboard_is_served_when_built(tmp_path, database) -> None:
    out = tmp_path / "out"
    (out / "login").mkdir(parents=True)
    (out / "index.html").write_text("<html>app</html>")
    (out / "login" / "index.html").write_text("<html>login</html>")
    (out / "404.html").write_text("<html>404</html>")
    settings = make_settings(tmp_path, database, dashboard_dir=out)
    with TestClient(create_app(settings, database)) as client:
        assert client.get("/").text == "<html>app</html>"
        assert client.get("/login/").text == "<html>login</html>"
        assert client.get("/health").json()["status"] == "ok"  # API routes win over the mount
        missing = client.get("/nothing-here")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_dashboard_assets_are_compressed_and_hashed_ones_cached_for_good(tmp_path, database) -> None:

    out = tmp_path / "out"
    (out / "_next" / "static" / "chunks").mkdir(parents=True)
    (out / "index.html").write_text("<html>" + "app " * 500 + "</html>")
    script = "console.log('dashboard');" * 200
    (out / "_next" / "static" / "chunks" / "main-abc123.js").write_text(script)
    settings = make_settings(tmp_path, database, dashboard_dir=out)
    with TestClient(create_app(settings, database)) as client:
        asset = client.get("/_next/static/chunks/main-abc123.js", headers={"Accept-Encoding": "gzip"})
        assert asset.headers["content-encoding"] == "gzip"
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert asset.text == script  # httpx decompresses
        assert int(asset.headers["content-length"]) < len(script) / 10
        raw = client.get("/_next/static/chunks/main-abc123.js", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in raw.headers and raw.text == script
        page = client.get("/", headers={"Accept-Encoding": "gzip"})
        assert page.headers["cache-control"] == "no-cache" and page.headers["content-encoding"] == "gzip"

