"""Feedback labels through HTTP: bad input is refused whole (422) and stores nothing, a later
label for a row wins, and a class the model never saw is kept for retraining to learn."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mlservice.db import Database
from mlservice.predictions.models import PredictionFeedback
from tests.helpers import TINY_PARAMS, Accounts, adult_sample, adult_test, records, train, wait_job

ROWS = 40


@pytest.fixture
def predicted(client: TestClient, accounts: Accounts) -> dict:
    """A completed prediction job of ROWS held-out Adult rows, owned by a plain user."""
    _, headers = accounts.login_as("labeller")
    train(client, headers, "adult", adult_sample(300), params=TINY_PARAMS)
    test = adult_test().head(ROWS)
    job_id = client.post("/predict", headers=headers, json={
        "model_key": "adult", "data": records(test.drop(columns="income"))}).json()["job_id"]
    assert wait_job(client, headers, job_id)["status"] == "completed"
    predictions = [r["prediction"] for r in client.get(f"/predict/{job_id}", headers=headers).json()["results"]]
    return {"headers": headers, "job_id": job_id, "predictions": predictions, "truth": test["income"].tolist()}


def stored(database: Database, job_id: str) -> dict[int, str]:
    with database.session() as session:
        return {f.row_index: f.label for f in session.scalars(
            select(PredictionFeedback).where(PredictionFeedback.job_id == job_id))}


def send(client: TestClient, predicted: dict, labels: list[tuple[int, object]]):
    return client.post(f"/predict/{predicted['job_id']}/feedback", headers=predicted["headers"],
                       json={"labels": [{"row": row, "label": label} for row, label in labels]})


def test_bad_feedback_is_refused_whole_and_stores_nothing(client: TestClient, database: Database, predicted) -> None:
    first = send(client, predicted, [(0, predicted["truth"][0]), (1, predicted["truth"][1])])
    assert first.status_code == 200 and first.json()["labelled_rows"] == 2
    before = stored(database, predicted["job_id"])

    refusals = [
        # rows the job does not have, named; the valid rows of the same request are not stored either
        ([(2, "<=50K"), (ROWS, "<=50K"), (ROWS + 7, ">50K")], "bad_row", [f"[{ROWS}, {ROWS + 7}]", f"0…{ROWS - 1}"]),
        # one row, two different labels in one request: which one was meant is unknown
        ([(3, "<=50K"), (0, ">50K"), (0, "<=50K"), (3, ">50K"), (4, ">50K")], "conflicting_labels", ["[0, 3]"]),
        ([(5, "")], "bad_label", ["row 5", "empty"]),
        ([(5, "x" * 201)], "bad_label", ["row 5", "200 characters"]),
    ]
    for labels, code, words in refusals:
        response = send(client, predicted, labels)
        assert response.status_code == 422, (labels, response.text)
        error = response.json()["error"]
        assert error["code"] == code and all(w in error["message"] for w in words), error
        assert stored(database, predicted["job_id"]) == before

    for labels in ([(-1, "<=50K")], [(0, None)], []):  # refused by the request's schema
        assert send(client, predicted, labels).status_code == 422
    assert stored(database, predicted["job_id"]) == before

    missing = client.post("/predict/nosuchjob/feedback", headers=predicted["headers"], json={"labels": [{"row": 0, "label": "a"}]})
    assert missing.status_code == 404


def test_the_latest_label_wins_and_a_new_class_is_kept(client: TestClient, database: Database, predicted) -> None:
    predictions, truth = predicted["predictions"], predicted["truth"]
    job_id = predicted["job_id"]
    # The same label twice in one request is one label.
    response = send(client, predicted, [(i, truth[i]) for i in range(10)] + [(0, truth[0])])
    assert response.status_code == 200
    right = sum(p == t for p, t in zip(predictions[:10], truth[:10]))
    assert response.json() == {"job_id": job_id, "labelled_rows": 10, "realised_accuracy": pytest.approx(right / 10)}

    # A later request corrects rows 0 and 1: their new labels replace the old ones.
    flipped = {i: (">50K" if truth[i] == "<=50K" else "<=50K") for i in (0, 1)}
    response = send(client, predicted, list(flipped.items()))
    assert response.status_code == 200 and response.json()["labelled_rows"] == 10
    right_now = right - sum(predictions[i] == truth[i] for i in (0, 1)) + sum(predictions[i] == flipped[i] for i in (0, 1))
    assert response.json()["realised_accuracy"] == pytest.approx(right_now / 10)
    assert stored(database, job_id) == {**{i: truth[i] for i in range(10)}, **flipped}

    # A class the model never predicted (real label sets change) is kept, counted as a miss.
    response = send(client, predicted, [(10, "unemployed")])
    assert response.status_code == 200 and response.json()["labelled_rows"] == 11
    assert response.json()["realised_accuracy"] == pytest.approx(right_now / 11)
    assert stored(database, job_id)[10] == "unemployed"
