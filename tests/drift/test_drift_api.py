"""Drift monitoring through HTTP with real data and real shifts: checks from the prediction
log, verdicts, reports, alerts, the daily schedule, feedback and safe retraining."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon

from mlservice.ml import load_bundle
from tests.drift.support import check, log_predictions, predicted, send_labels, shifted, train_adult
from tests.helpers import adult_test, records, wait_job


def independent_statistics(profile: dict, name: str, values: pd.Series) -> tuple[float, float, list[float]]:
    entry = profile["features"][name]
    n = len(values)
    if entry["type"] == "numeric":
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        index = np.digitize(numbers, entry["edges"], right=True)
        index[np.isnan(numbers)] = len(entry["edges"]) + 1
    else:
        position = {c: i for i, c in enumerate(entry["categories"])}
        index = np.array([len(position) + 1 if pd.isna(v) else position.get(str(v), len(position)) for v in values])
    current = np.bincount(index, minlength=len(entry["shares"])) / n
    reference = np.asarray(entry["shares"], dtype=float)
    r, c = np.where(reference == 0, 1e-4, reference), np.where(current == 0, 1e-4, current)
    return float(np.sum((c - r) * np.log(c / r))), float(jensenshannon(reference, current, base=2)), current.tolist()


def test_held_out_rows_show_no_drift_and_shifted_rows_drift_on_exactly_the_moved_features(
    service, database
) -> None:
    client, admin, settings = service(auto_retrain=False)
    train_adult(client, admin)
    test_rows = adult_test().drop(columns="income").sample(2000, random_state=1).reset_index(drop=True)

    start = datetime.now(UTC) - timedelta(seconds=1)
    log_predictions(client, admin, test_rows)
    job, calm = check(client, admin, since=start.isoformat())
    assert calm["verdict"] == "no_drift", [(f["name"], f["psi"]) for f in calm["features"]]
    assert calm["sample_size"] == 2000 and calm["source"] == "log"
    assert client.get("/health/alerts", headers=admin).json()["total"] == 0

    moved = shifted(test_rows)
    middle = datetime.now(UTC)
    log_predictions(client, admin, moved)
    job, report = check(client, admin)  # window: since the previous check
    assert report["verdict"] == "drift"
    assert report["window_start"] is not None and report["sample_size"] == 2000
    assert set(report["drifted_features"]) == {"age", "workclass"}
    # Drifted first, ranked by impact = the version's permutation importance × PSI.
    importance = client.get("/models/adult/versions/1.0.0", headers=admin).json()["full_metrics"]["feature_importance"]
    assert set(importance) == {f["name"] for f in report["features"]}
    for feature in report["features"]:
        assert feature["impact"] == pytest.approx(max(importance[feature["name"]], 0) * feature["psi"], abs=1e-12)
    ranked = sorted(report["features"], key=lambda f: (not f["drifted"], -f["impact"], -f["psi"], f["name"]))
    assert [f["name"] for f in report["features"]] == [f["name"] for f in ranked]
    assert report["drifted_features"] == [f["name"] for f in ranked if f["drifted"]]
    assert report["drifted_share"] == pytest.approx(2 / len(report["features"]))

    version = client.get("/models/adult/versions/1.0.0", headers=admin).json()
    root = settings.effective_artifacts_root
    profile = load_bundle(root / "models" / "adult" / version["job_id"], trusted_root=root).profile
    by_name = {f["name"]: f for f in report["features"]}
    for name in ("age", "workclass", "hours_per_week", "education"):
        psi, js, current = independent_statistics(profile, name, moved[name])
        assert by_name[name]["psi"] == pytest.approx(psi, abs=1e-9)
        assert by_name[name]["js"] == pytest.approx(js, abs=1e-9)
        assert by_name[name]["current_shares"] == pytest.approx(current, abs=1e-12)
        assert len(by_name[name]["reference_shares"]) == len(by_name[name]["current_shares"])
    assert by_name["age"]["severity"] == "major"

    alerts = client.get("/health/alerts", headers=admin).json()
    assert alerts["total"] == 1
    alert = alerts["items"][0]
    assert alert["kind"] == "drift" and alert["model_key"] == "adult"
    assert alert["link"] == {"type": "drift_report", "id": report["id"]}
    assert f"({', '.join(report['drifted_features'])})" in alert["message"]  # named by impact

    # The same condition again updates the one alert instead of adding another.
    log_predictions(client, admin, shifted(test_rows, seed=2))
    _, again = check(client, admin)
    assert again["verdict"] == "drift"
    alerts = client.get("/health/alerts", headers=admin).json()
    assert alerts["total"] == 1 and alerts["items"][0]["occurrences"] == 2
    acked = client.post(f"/health/alerts/{alert['id']}/ack", headers=admin)
    assert acked.status_code == 200 and acked.json()["status"] == "acknowledged"
    assert client.get("/health/alerts", headers=admin).json()["total"] == 0
    assert client.post(f"/health/alerts/{alert['id']}/ack", headers=admin).status_code == 409

    listed = client.get("/drift/daily-reports", params={"model_key": "adult"}, headers=admin).json()
    assert listed["total"] == 3
    assert client.get("/drift/daily-reports", params={"verdict": "drift"}, headers=admin).json()["total"] == 2
    window = client.get("/drift/daily-reports", params={"created_after": middle.isoformat(), "limit": 1}, headers=admin).json()
    assert window["total"] == 2 and len(window["items"]) == 1


def test_a_handful_of_rows_is_not_enough_data(service) -> None:
    client, admin, _ = service(auto_retrain=True)
    train_adult(client, admin, rows=600)
    rows = adult_test().head(30)
    job_id = log_predictions(client, admin, shifted(rows.drop(columns="income")))
    # Every label wrong: on 30 rows that is still no ground for an alert or a retrain.
    wrong = [">50K" if p == "<=50K" else "<=50K" for p in predicted(client, admin, job_id)]
    assert send_labels(client, admin, job_id, wrong)["realised_accuracy"] == 0.0
    job, report = check(client, admin, last_days=1)
    assert report["verdict"] == "not_enough_data" and report["sample_size"] == 30
    assert report["realised_accuracy"] == {"labelled_rows": 30, "accuracy": 0.0}
    # The estimate is still reported, with the wide interval 30 rows deserve.
    low, high = report["estimated_accuracy_interval"]
    assert 0 < low <= report["estimated_accuracy"] <= high <= 1 and high - low > 0.1
    performance = report["performance"]
    assert performance["source"] == "estimated" and performance["sample_size"] == 30
    assert performance["value"] == report["estimated_accuracy"] and performance["dropped"] is False
    assert job["result"]["retrain_job_id"] is None and job["result"]["retrain_reasons"] == []
    assert client.get("/health/alerts", headers=admin).json()["total"] == 0


def test_checking_an_uploaded_dataset_and_bad_requests(service) -> None:
    client, admin, _ = service(auto_retrain=False)
    train_adult(client, admin, rows=600)
    rows = records(shifted(adult_test().drop(columns="income").head(300)))
    _, report = check(client, admin, data=rows)
    assert report["source"] == "data" and report["verdict"] == "drift"
    assert report["prediction_drift"] is not None
    bad = [
        ({"model_key": "nope"}, 404),
        ({"model_key": "adult", "version": "7.0.0"}, 404),
        ({"model_key": "adult", "since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, 422),
        ({"model_key": "adult", "since": "2026-01-02T00:00:00Z", "last_days": 3}, 422),
        ({"model_key": "adult", "data": []}, 422),
        ({"model_key": "adult", "surprise": 1}, 422),
    ]
    for body, status in bad:
        response = client.post("/drift/check", headers=admin, json=body)
        assert response.status_code == status, (body, response.text)
    assert client.get("/drift/reports/999999", headers=admin).status_code == 404


def test_daily_check_runs_once_per_model_and_day(service, database) -> None:
    from mlservice.drift.service import run_daily_checks
    from mlservice.scheduler import build_scheduler

    client, admin, settings = service(auto_retrain=False, daily_drift_check_time="23:00", timezone="Europe/Moscow")
    train_adult(client, admin, rows=600)
    app = client.app
    queue, artifacts = app.state.queue, app.state.artifacts

    before = datetime(2026, 11, 26, 19, 59, tzinfo=UTC)  # 22:59 in Moscow
    after = datetime(2026, 11, 26, 20, 1, tzinfo=UTC)  # 23:01
    assert run_daily_checks(database, queue, settings, artifacts, now=before) == []
    started = run_daily_checks(database, queue, settings, artifacts, now=after)
    assert len(started) == 1
    job = wait_job(client, admin, started[0])
    assert job["status"] == "completed" and job["source"] == "system" and job["type"] == "drift"
    assert run_daily_checks(database, queue, settings, artifacts, now=after + timedelta(minutes=30)) == []

    # A restart the same day (a new app on the same database) does not run it again...
    client2, _, settings2 = service(auto_retrain=False, daily_drift_check_time="23:00", timezone="Europe/Moscow")
    state = client2.app.state
    assert run_daily_checks(database, state.queue, settings2, state.artifacts, now=after + timedelta(hours=1)) == []
    # ...but the next day it does.
    assert len(run_daily_checks(database, state.queue, settings2, state.artifacts, now=after + timedelta(days=1))) == 1
    reports = client.get("/drift/daily-reports", params={"trigger": "daily"}, headers=admin).json()
    assert reports["items"][0]["trigger"] == "daily"

    trigger = build_scheduler(settings, artifacts, database, queue).get_job("daily-drift-check").trigger
    fields = {f.name: str(f) for f in trigger.fields}
    assert (fields["hour"], fields["minute"], str(trigger.timezone)) == ("23", "0", "Europe/Moscow")


def test_drift_triggers_a_safe_retrain(service) -> None:
    """How the challenger is judged is training's (tests/training); here: drift starts one
    retrain, its verdict reaches the registry and the alerts, and the cool-down holds."""
    client, admin, _ = service(retrain_cooldown_hours=24)
    train_adult(client, admin, rows=1500)
    log_predictions(client, admin, shifted(adult_test().drop(columns="income").sample(600, random_state=3)))
    drift_job, report = check(client, admin, last_days=1)
    assert report["verdict"] == "drift" and "drift" in drift_job["result"]["retrain_reasons"]
    retrain_id = drift_job["result"]["retrain_job_id"]
    assert retrain_id
    retrain = wait_job(client, admin, retrain_id)
    assert retrain["status"] == "completed", retrain
    assert retrain["type"] == "retrain" and retrain["source"] == "system"
    result = retrain["result"]
    assert result["champion"] == "1.0.0" and result["version"] == "1.1.0" and result["report_id"] == report["id"]
    promoted = result["promoted"]

    model = client.get("/models/adult", headers=admin).json()
    assert model["active_version"] == ("1.1.0" if promoted else "1.0.0")
    challenger = next(v for v in model["versions"] if v["version"] == "1.1.0")
    assert challenger["parent_version"] == "1.0.0" and challenger["job_id"] == retrain_id
    rejected = client.get("/health/alerts", params={"kind": "retrain_rejected"}, headers=admin).json()
    assert rejected["total"] == (0 if promoted else 1)
    if not promoted:
        assert "not promoted" in rejected["items"][0]["message"]

    # One at a time, then a cool-down: the next drift does not start another retrain.
    log_predictions(client, admin, shifted(adult_test().drop(columns="income").sample(300, random_state=4)))
    again, _ = check(client, admin, last_days=1)
    assert again["result"]["retrain_job_id"] is None
    assert "ML_RETRAIN_COOLDOWN_HOURS" in again["result"]["retrain_skipped"]


def test_feedback_labels_give_realised_accuracy(service) -> None:
    client, admin, _ = service(auto_retrain=False)
    train_adult(client, admin, rows=600)
    test = adult_test().head(120).reset_index(drop=True)
    job_id = client.post("/predict", headers=admin, json={"model_key": "adult", "data": records(test.drop(columns="income"))}).json()["job_id"]
    wait_job(client, admin, job_id)
    predictions = [r["prediction"] for r in client.get(f"/predict/{job_id}", headers=admin).json()["results"]]
    labels = [{"row": i, "label": test["income"][i]} for i in range(120)]
    response = client.post(f"/predict/{job_id}/feedback", headers=admin, json={"labels": labels})
    assert response.status_code == 200
    expected = float(np.mean([p == t for p, t in zip(predictions, test["income"])]))
    assert response.json() == {"job_id": job_id, "labelled_rows": 120, "realised_accuracy": pytest.approx(expected)}
    _, report = check(client, admin, last_days=1)
    assert report["realised_accuracy"]["accuracy"] == pytest.approx(expected)
    bad = client.post(f"/predict/{job_id}/feedback", headers=admin, json={"labels": [{"row": 500, "label": "x"}]})
    assert bad.status_code == 422 and "outside" in bad.json()["error"]["message"]
