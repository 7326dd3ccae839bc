"""Accuracy in drift reports, through HTTP on real Adult rows: estimated from the calibrated
confidences without labels, realised from feedback, judged against the holdout accuracy, and a
drop alerted and retrained on even when no feature drifted."""

from __future__ import annotations

import pytest

from mlservice.drift.performance import rank_features
from tests.drift.support import check, log_predictions, send_labels, train_adult
from tests.helpers import adult_test, wait_job


def held_out(rows: int, seed: int):
    """Rows of the Adult test file (never trained on), with their true labels."""
    frame = adult_test().sample(rows, random_state=seed).reset_index(drop=True)
    return frame.drop(columns="income"), frame["income"].tolist()


def wrong(labels: list[str]) -> list[str]:
    return [">50K" if label == "<=50K" else "<=50K" for label in labels]


def alerts(client, headers, **params) -> list[dict]:
    return client.get("/health/alerts", headers=headers, params={"kind": "performance_drop", **params}).json()["items"]


def test_estimated_accuracy_lands_near_realised_and_a_drop_alerts_until_it_is_gone(service) -> None:
    client, admin, settings = service(auto_retrain=False)
    train_adult(client, admin)
    holdout = client.get("/models/adult/versions/1.0.0", headers=admin).json()["full_metrics"]
    assert holdout["ece"] is not None

    # 1. Held-out rows with their true labels: the estimate (made without looking at the labels)
    # lands near the realised accuracy, and nothing fell.
    rows, truth = held_out(2000, seed=11)
    job_id = log_predictions(client, admin, rows)
    realised = send_labels(client, admin, job_id, truth)["realised_accuracy"]
    job, report = check(client, admin)
    assert report["verdict"] == "no_drift", report["drifted_features"]
    assert report["realised_accuracy"] == {"labelled_rows": 2000, "accuracy": pytest.approx(realised)}
    estimate = report["estimated_accuracy"]
    assert abs(estimate - realised) <= 0.05, (estimate, realised)
    low, high = report["estimated_accuracy_interval"]
    assert low < estimate < high and high - low < 0.2
    assert report["holdout_accuracy"] == holdout["accuracy"]
    assert report["performance"] == {
        "reference": holdout["accuracy"], "value": pytest.approx(realised), "source": "realised", "sample_size": 2000,
        "change": pytest.approx(realised - holdout["accuracy"]), "threshold": -0.05, "dropped": False,
    }
    assert job["result"]["performance"] == report["performance"] and job["result"]["retrain_reasons"] == []
    assert alerts(client, admin, status="all") == []
    listed = client.get("/drift/daily-reports", headers=admin).json()["items"][0]
    assert listed["estimated_accuracy"] == estimate and listed["performance"] == report["performance"]

    # 2. Labels that say the model is wrong on most rows: a performance drop, while no feature
    # drifted. One alert, critical (more than twice the threshold), no retrain (auto-retrain off).
    rows, truth = held_out(2000, seed=12)
    job_id = log_predictions(client, admin, rows)
    send_labels(client, admin, job_id, wrong(truth))
    job, report = check(client, admin)
    assert report["verdict"] == "no_drift"
    performance = report["performance"]
    assert performance["source"] == "realised" and performance["dropped"] is True
    assert performance["change"] <= 2 * settings.retraining_accuracy_drop_threshold
    assert job["result"]["retrain_reasons"] == ["performance_drop"] and job["result"]["retrain_job_id"] is None
    [alert] = alerts(client, admin)
    assert alert["severity"] == "critical" and alert["model_key"] == "adult"
    assert alert["link"] == {"type": "drift_report", "id": report["id"]}
    assert "realised" in alert["message"] and f"{performance['value']:.3f}" in alert["message"]

    # The same drop on the next window refreshes that alert...
    rows, truth = held_out(2000, seed=13)
    job_id = log_predictions(client, admin, rows)
    send_labels(client, admin, job_id, wrong(truth))
    check(client, admin)
    [again] = alerts(client, admin)
    assert again["id"] == alert["id"] and again["occurrences"] == 2

    # 3. ...and a window without labels, estimated from confidences alone, shows no drop: resolved.
    rows, _ = held_out(2000, seed=14)
    log_predictions(client, admin, rows)
    _, report = check(client, admin)
    assert report["realised_accuracy"] is None
    assert report["performance"]["source"] == "estimated" and report["performance"]["dropped"] is False
    assert alerts(client, admin) == []
    assert [a["status"] for a in alerts(client, admin, status="all")] == ["resolved"]


def test_a_performance_drop_starts_a_retrain_even_without_drift(service) -> None:
    client, admin, _ = service(auto_retrain=True, retrain_cooldown_hours=24)
    train_adult(client, admin, rows=1500)

    rows, truth = held_out(2000, seed=21)
    job_id = log_predictions(client, admin, rows)
    send_labels(client, admin, job_id, truth)
    calm, report = check(client, admin)
    assert report["verdict"] == "no_drift" and report["performance"]["dropped"] is False
    assert calm["result"]["retrain_job_id"] is None

    rows, truth = held_out(2000, seed=22)
    job_id = log_predictions(client, admin, rows)
    send_labels(client, admin, job_id, wrong(truth))
    dropped, report = check(client, admin)
    assert report["verdict"] == "no_drift" and report["performance"]["dropped"] is True
    assert dropped["result"]["retrain_reasons"] == ["performance_drop"]
    retrain = wait_job(client, admin, dropped["result"]["retrain_job_id"])
    assert retrain["type"] == "retrain" and retrain["source"] == "system" and retrain["status"] == "completed", retrain
    assert len(alerts(client, admin)) == 1

    # The cool-down holds for a drop as it does for drift, and the report says why.
    rows, truth = held_out(2000, seed=23)
    job_id = log_predictions(client, admin, rows)
    send_labels(client, admin, job_id, wrong(truth))
    held, report = check(client, admin)
    assert report["performance"]["dropped"] is True  # whichever version serves: most labels are wrong
    assert held["result"]["retrain_job_id"] is None
    assert "ML_RETRAIN_COOLDOWN_HOURS" in held["result"]["retrain_skipped"]
    stored = client.get(f"/drift/reports/{report['id']}", headers=admin).json()
    assert stored["performance"]["dropped"] is True


def test_drifted_features_rank_by_importance_times_psi() -> None:
    features = [
        {"name": "ignored", "psi": 2.0, "drifted": True},  # drifts a lot, the model does not use it
        {"name": "used", "psi": 0.3, "drifted": True},
        {"name": "calm", "psi": 0.05, "drifted": False},  # matters most, but did not drift
        {"name": "noisy", "psi": 0.4, "drifted": True},  # permutation noise below zero counts as zero
        {"name": "unmeasured", "psi": 0.5, "drifted": True},
    ]
    importance = {"ignored": 0.001, "used": 0.04, "calm": 0.2, "noisy": -0.003}
    assert rank_features(features, importance) == ["used", "ignored", "noisy", "unmeasured"]
    assert [f["name"] for f in features] == ["used", "ignored", "noisy", "unmeasured", "calm"]
    assert [f["impact"] for f in features] == pytest.approx([0.012, 0.002, 0.0, None, 0.01])
    # A version trained before importances were measured: by PSI, as before.
    assert rank_features(features, None) == ["ignored", "unmeasured", "noisy", "used"]
    assert all(f["impact"] is None for f in features)
