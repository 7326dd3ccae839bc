"""A model's drift and performance-drop alerts are separate conditions: each is deduplicated per
model, and resolving one leaves the other, and other models' alerts, open."""

from __future__ import annotations

from sqlalchemy import select

from mlservice.alerts.models import Alert
from mlservice.alerts.service import raise_alert, resolve
from mlservice.db import Database


def test_drift_and_performance_alerts_dedup_and_resolve_per_model_and_kind(database: Database) -> None:
    def fire(kind: str, key: str) -> int:
        with database.session(write=True) as session:
            prefix = "drift" if kind == "drift" else "performance"
            return raise_alert(session, kind=kind, severity="warning", dedup_key=f"{prefix}:{key}", model_key=key,
                               message=f"{kind} in {key}").id

    first = fire("performance_drop", "a")
    assert fire("performance_drop", "a") == first  # the same condition again: the same alert
    drift_a, drop_b = fire("drift", "a"), fire("performance_drop", "b")
    assert len({first, drift_a, drop_b}) == 3

    with database.session(write=True) as session:
        resolve(session, "performance:a")
    with database.session() as session:
        status = {a.id: (a.status, a.occurrences) for a in session.scalars(select(Alert))}
    assert status == {first: ("resolved", 2), drift_a: ("active", 1), drop_b: ("active", 1)}
    assert fire("performance_drop", "a") not in status  # back after it was resolved: a new alert
