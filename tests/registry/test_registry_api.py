"""The model registry through HTTP: versions, promotion and rollback, and who may change them."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.helpers import TINY_PARAMS, Accounts, adult_sample, train


def test_versions_promotion_rollback_and_their_refusals(client: TestClient, accounts: Accounts) -> None:
    _, headers = accounts.login_as("modeller")
    _, admin = accounts.login_as("registrar", "admin")
    train(client, headers, "reg", adult_sample(300), params=TINY_PARAMS)
    # One version: nothing to roll back to.
    lonely = client.post("/models/reg/rollback", headers=admin)
    assert lonely.status_code == 409, lonely.text
    train(client, headers, "reg", adult_sample(300, seed=1), params=TINY_PARAMS)

    model = client.get("/models/reg", headers=headers).json()
    assert model["active_version"] == "1.0.0"
    assert [v["version"] for v in model["versions"]] == ["1.0.0", "1.1.0"]  # oldest first
    assert client.get("/models/reg/versions/9.9.9", headers=headers).status_code == 404
    assert client.get("/models/nothing", headers=headers).status_code == 404

    for method, path in (("POST", "/models/reg/versions/1.1.0/promote"), ("POST", "/models/reg/rollback"),
                         ("DELETE", "/models/reg/versions/1.1.0")):
        refused = client.request(method, path, headers=headers)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden", (method, path)
    assert client.post("/models/reg/versions/9.9.9/promote", headers=admin).status_code == 404
    assert client.delete("/models/reg/versions/9.9.9", headers=admin).status_code == 404

    assert client.post("/models/reg/versions/1.1.0/promote", headers=admin).json()["active_version"] == "1.1.0"
    assert client.post("/models/reg/rollback", headers=admin).json()["active_version"] == "1.0.0"
    actions = [c["action"] for c in client.get("/models/reg", headers=headers).json()["changes"]]
    assert actions[-2:] == ["promoted", "rolled_back"]


def test_models_are_listed_a_page_at_a_time(client: TestClient, accounts: Accounts) -> None:
    _, headers = accounts.login_as("lister")
    for key in ("m_a", "m_b"):
        train(client, headers, key, adult_sample(300), params=TINY_PARAMS)
    first = client.get("/models", headers=headers, params={"limit": 1}).json()
    second = client.get("/models", headers=headers, params={"limit": 1, "offset": 1}).json()
    assert first["total"] == second["total"] == 2 and first["limit"] == 1 and second["offset"] == 1
    assert [first["items"][0]["model_key"], second["items"][0]["model_key"]] == ["m_a", "m_b"]  # by key
    assert client.get("/models", headers=headers, params={"limit": 501}).status_code == 422
