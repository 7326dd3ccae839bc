"""Real label columns have long tails. A class too rare for the stratified holdout is trained on
and reported (the job's result lists it with its rows, and a warning says its accuracy is not
measured); a target with one class, or a class no row holds, is refused with 422 when the
training is asked for, whatever the data's source."""

from __future__ import annotations

import io

import pandas as pd
from fastapi.testclient import TestClient

from tests.conftest import REPO_ROOT
from tests.helpers import TINY_PARAMS, Accounts, adult_sample, train, upload

COMMON_SUBJECTS = 8
ROWS_PER_SUBJECT = 30


def ucla_long_tail() -> tuple[pd.DataFrame, list[str]]:
    """A few hundred rows of the real UCLA course table (title → subject): its 8 largest subjects,
    and every subject the whole table has a single course of. Returns them and those subjects."""
    table = pd.read_csv(REPO_ROOT / "datasets" / "ucla_courses" / "ucla_f18.csv")
    counts = table["subject"].value_counts()
    singles = sorted(counts[counts == 1].index)
    common = table[table["subject"].isin(counts.index[:COMMON_SUBJECTS])]
    sample = common.groupby("subject").head(ROWS_PER_SUBJECT)
    frame = pd.concat([sample, table[table["subject"].isin(singles)]])
    return frame[["course", "subject"]].reset_index(drop=True), singles


def test_a_real_table_with_single_row_classes_trains_and_lists_them(
    client: TestClient, accounts: Accounts
) -> None:
    _, headers = accounts.login_as("long_tail_user")
    frame, singles = ucla_long_tail()
    assert len(singles) >= 5 and len(frame) < 400
    job = train(client, headers, "courses", frame, target="subject", params=TINY_PARAMS)

    rare = job["result"]["rare_classes"]
    listed = {entry["class"]: entry["rows"] for entry in rare}
    assert {subject: 1 for subject in singles}.items() <= listed.items(), rare
    assert [entry["rows"] for entry in rare] == sorted(entry["rows"] for entry in rare), (
        "the rarest first"
    )
    (warning,) = job["result"]["warnings"]
    assert f"{len(rare)} class(es) have no rows in the holdout" in warning
    assert all(repr(subject) in warning for subject in singles[:20]), warning

    version = client.get(
        f"/models/courses/versions/{job['result']['version']}", headers=headers
    ).json()
    assert set(singles) <= set(version["classes"]), "the model learned every single-row class"
    support = {name: cls["support"] for name, cls in version["full_metrics"]["per_class"].items()}
    assert {name for name, rows in support.items() if rows == 0} == set(listed), (
        "the listed classes are exactly those the holdout has no row of"
    )
    assert version["training"]["info"]["rare_classes"] == rare, "kept with the version too"


def test_no_warning_when_every_class_is_held_out(client: TestClient, accounts: Accounts) -> None:
    _, headers = accounts.login_as("common_classes")
    job = train(client, headers, "adult", adult_sample(300), params=TINY_PARAMS)
    assert job["result"]["rare_classes"] == [] and job["result"]["warnings"] == []


def test_one_class_or_a_class_without_rows_is_refused_when_asked(
    client: TestClient, accounts: Accounts
) -> None:
    _, headers = accounts.login_as("refused_trainer")

    def start(dataset: dict) -> dict:
        response = client.post(
            "/train",
            headers=headers,
            json={
                "model_key": "refused",
                "target": "y",
                "dataset_id": dataset["id"],
                "params": TINY_PARAMS,
            },
        )
        assert response.status_code == 422, response.text
        return response.json()["error"]

    one_class = upload(client, headers, pd.DataFrame({"x": range(40), "y": ["same"] * 39 + [None]}))
    error = start(one_class)
    assert error["code"] == "single_class" and "only one class ('same')" in error["message"], error

    # Parquet keeps a categorical column's categories, used or not: 'c' is a class no row holds.
    declared = pd.DataFrame(
        {"x": range(40), "y": pd.Categorical(["a", "b"] * 20, categories=["a", "b", "c"])}
    )
    buffer = io.BytesIO()
    declared.to_parquet(buffer, index=False)
    response = client.post(
        "/datasets", headers=headers, files={"file": ("declared.parquet", buffer.getvalue())}
    )
    assert response.status_code == 201, response.text
    error = start(response.json())
    assert error["code"] == "empty_class" and error["details"] == {"classes": ["c"]}, error
    assert "1 class(es) of 'y' have no rows: 'c'" in error["message"], error

    assert client.get("/jobs", headers=headers).json()["total"] == 0, (
        "no job for a training that cannot run"
    )
