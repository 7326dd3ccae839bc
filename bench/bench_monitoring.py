"""Prequential benchmark of the drift -> feedback -> retrain loop, through the HTTP API.

Data: NOAA's Atlantic storm tracks 1975-2022 (datasets/storms/, see datasets/README.md): predict a
storm observation's status from its position, wind, pressure and wind-field size. The label mix
really changes over the years ("other low", "tropical wave" and "disturbance" appear, the
wind-field diameters are only recorded from 2004), so a first model goes stale.

A real `mlservice serve` (auto-retrain on, zero cool-down) learns the first period. Then, period by
period: (1) predict the period with a batch job; (2) record the served version's accuracy on it
(computed here from the true labels, before the service has them) and the drift report's
label-free estimate; (3) send the true labels as feedback; (4) run a drift check, which may start
a retrain, and wait for that retrain to end. In the same run:

- FROZEN: the first version's bundle, loaded from the server's data directory and predicted in
  this process (the same bundle the service serves, so the same numbers; predicting it through
  the API would log its rows into the loop model's drift window);
- ORACLE: a second model key trained through the API, before each period, on every true label
  seen so far, and predicted through the API with that version pinned.

    python bench/bench_monitoring.py                 # pseudo-labels off (the setting's default)
    python bench/bench_monitoring.py --pseudo-labels # retrain sets also hold confident predictions
    python bench/bench_monitoring.py --both          # both, one after the other

The suite runs a short form (tests/test_monitoring_loop.py) through :func:`run_benchmark`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: the repository's tests/ helpers are importable
    sys.path.insert(0, str(ROOT))

from mlservice.client import Client
from mlservice.ml import load_bundle
from tests.live_server import ADMIN_PASSWORD, live_server

DATASET = ROOT / "datasets" / "storms" / "storms.csv"
TARGET = "status"
# `category` is derived from the status (it is set only for hurricanes), `name` and `year`
# identify the storm and the time: none of them may be a feature.
FEATURES = ["month", "hour", "lat", "long", "wind", "pressure",
            "tropicalstorm_force_diameter", "hurricane_force_diameter"]
# The first period (1975-1994, ~4,700 rows) trains the first model; then 4-year periods.
FULL_EDGES = (1975, 1995, 1999, 2003, 2007, 2011, 2015, 2019, 2023)
LOOP_KEY, ORACLE_KEY = "storms", "storms-oracle"


@dataclass
class Period:
    label: str
    rows: int
    served_version: str
    loop: float
    frozen: float
    oracle: float
    estimated: float | None
    estimated_interval: list[float] | None
    report_realised: float | None
    verdict: str
    retrain: dict[str, Any] | None
    seconds: float


@dataclass
class BenchResult:
    pseudo_labels: bool
    label_share: float
    seed: int
    settings: dict[str, str]
    server_knows_pseudo_setting: bool
    train_rows: int
    periods: list[Period] = field(default_factory=list)
    seconds: float = 0.0

    def mean(self, name: str) -> float:
        return float(np.mean([getattr(p, name) for p in self.periods]))

    @property
    def gap_closed(self) -> float | None:
        """Share of the frozen -> oracle gap (in mean accuracy) that the loop closes."""
        gap = self.mean("oracle") - self.mean("frozen")
        return (self.mean("loop") - self.mean("frozen")) / gap if gap > 0 else None

    @property
    def estimate_errors(self) -> list[float]:
        return [abs(p.estimated - p.loop) for p in self.periods if p.estimated is not None]

    @property
    def estimate_mae(self) -> float | None:
        errors = self.estimate_errors
        return float(np.mean(errors)) if errors else None


def load_periods(edges: tuple[int, ...] = FULL_EDGES, sample: float = 1.0,
                 seed: int = 0) -> list[tuple[str, pd.DataFrame]]:
    """The storm table cut at ``edges`` (years; each period is [edge, next edge)), in time order;
    ``sample`` < 1 keeps that share of each period's rows (at random, still in time order)."""
    frame = pd.read_csv(DATASET).sort_values(["year", "month", "day", "hour"], kind="stable")
    periods = []
    for start, end in itertools.pairwise(edges):
        part = frame[(frame["year"] >= start) & (frame["year"] < end)]
        if sample < 1:
            part = part.sample(frac=sample, random_state=seed).sort_index()
        periods.append((f"{start}-{end - 1}", part[[*FEATURES, TARGET]].reset_index(drop=True)))
    return periods


def _accuracy(predicted: Any, truth: pd.Series) -> float:
    return float(np.mean(np.asarray(predicted, dtype=object).astype(str) == truth.astype(str).to_numpy()))


def _bundle_dir(data_dir: Path, key: str, job_id: str) -> Path:
    """Where the service saved the bundle of the version a training job made."""
    found = [p for p in data_dir.rglob(job_id) if p.is_dir() and p.parent.name == key]
    if len(found) != 1:
        raise RuntimeError(f"expected one bundle of job {job_id} under {data_dir}, found {found}")
    return found[0]


def _pseudo_setting_known() -> bool:
    from mlservice.settings import Settings

    return "retrain_pseudo_labels" in Settings.model_fields


def run_benchmark(*, pseudo_labels: bool = False, label_share: float = 1.0, seed: int = 0, edges: tuple[int, ...] = FULL_EDGES, sample: float = 1.0,
                  hidden_layers: tuple[int, ...] = (32,), max_iter: int = 40, log: Any = print,
                  timeout: float = 900.0) -> BenchResult:
    """One prequential run; ``label_share`` < 1 sends the true labels of only that share of each
    period's rows (at random), as when few labels come back: the oracle then learns those labels
    too, and the loop's accuracy is still measured on every row. ``seed`` picks those rows (and
    the ``sample``); training itself is deterministic."""
    periods = load_periods(edges, sample, seed)
    (first_label, first), rest = periods[0], periods[1:]
    settings = {
        "ML_AUTO_RETRAIN": "true", "ML_RETRAIN_COOLDOWN_HOURS": "0",
        "ML_RETRAIN_PSEUDO_LABELS": "true" if pseudo_labels else "false",
        "ML_HIDDEN_LAYER_SIZES": repr(tuple(hidden_layers)), "ML_MAX_ITER": str(max_iter),
        "ML_DRIFT_MIN_SAMPLES": "50",
    }
    result = BenchResult(pseudo_labels, label_share, seed, settings, _pseudo_setting_known(), len(first))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mlservice-bench-monitoring-") as tmp:
        home = Path(tmp)
        with live_server(home, **settings) as server, Client(server.url) as client:
            client.login("admin", ADMIN_PASSWORD)
            first_job = client.train(LOOP_KEY, first, target=TARGET, timeout=timeout)
            log(f"trained {LOOP_KEY} {first_job['result']['version']} on {first_label} ({len(first)} rows)")
            frozen = load_bundle(_bundle_dir(home / "data", LOOP_KEY, first_job["id"]), home / "data")
            seen = [first]
            for number, (label, part) in enumerate(rest):
                t0 = time.monotonic()
                features, truth = part[FEATURES], part[TARGET]
                # The oracle learns every label seen so far before it sees this period.
                oracle_job = client.train(ORACLE_KEY, pd.concat(seen, ignore_index=True), target=TARGET,
                                          timeout=timeout)
                oracle_pred = client.predict_async(ORACLE_KEY, features, version=oracle_job["result"]["version"],
                                                   timeout=timeout)["prediction"]
                served = client.model(LOOP_KEY)["active_version"]
                created = client.predict_async(LOOP_KEY, features, wait=False)
                client.wait(created["job_id"], timeout=timeout)
                loop_pred = client.prediction_results(created["job_id"])["prediction"]
                loop_acc = _accuracy(loop_pred, truth)
                returned = (part.sample(frac=label_share, random_state=number + 1000 * seed).index.sort_values()
                            if label_share < 1 else part.index)
                client.feedback(created["job_id"], [(row, str(truth[row])) for row in returned])
                check = client.wait(client.drift_check(LOOP_KEY, wait=False)["job_id"], timeout=timeout)["result"]
                report = client.drift_report(check["report_id"])
                retrain = None
                if check.get("retrain_job_id"):
                    job = client.wait(check["retrain_job_id"], timeout=timeout, raise_on_failure=False)
                    retrain = {"status": job["status"], "error": job.get("error"), **(job.get("result") or {})}
                interval = report.get("estimated_accuracy_interval")
                realised = report.get("realised_accuracy")
                period = Period(
                    label=label, rows=len(part), served_version=served, loop=loop_acc,
                    frozen=_accuracy(frozen.predict_frame(features).labels, truth),
                    oracle=_accuracy(oracle_pred, truth),
                    estimated=report.get("estimated_accuracy"),
                    estimated_interval=list(interval) if interval else None,
                    report_realised=realised.get("accuracy") if isinstance(realised, dict) else realised,
                    verdict=report["verdict"], retrain=retrain, seconds=time.monotonic() - t0,
                )
                result.periods.append(period)
                log(_row(period))
                seen.append(part.loc[returned])
    result.seconds = time.monotonic() - started
    return result


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _retrain_text(retrain: dict[str, Any] | None) -> str:
    if retrain is None:
        return "none"
    if retrain["status"] != "completed":
        error = retrain.get("error") or {}
        return f"{retrain['status']} ({error.get('code', error) if isinstance(error, dict) else error})"
    verdict = "promoted" if retrain.get("promoted") else "held"
    rows = retrain.get("rows") or {}
    learned = f" (feedback {rows['feedback']}, pseudo {rows['pseudo_labels']})" if "feedback" in rows else ""
    return f"{retrain.get('version')} {verdict}{learned}"


HEADER = (f"{'period':<10} {'rows':>5} {'served':>6} {'loop':>6} {'frozen':>6} {'oracle':>6} "
          f"{'estim.':>6} {'interval':>13} {'|err|':>6} {'verdict':>9} {'s':>5}  retrain")


def _row(p: Period) -> str:
    interval = f"[{p.estimated_interval[0]:.3f},{p.estimated_interval[1]:.3f}]" if p.estimated_interval else "-"
    error = abs(p.estimated - p.loop) if p.estimated is not None else None
    return (f"{p.label:<10} {p.rows:>5} {p.served_version:>6} {p.loop:>6.3f} {p.frozen:>6.3f} {p.oracle:>6.3f} "
            f"{_fmt(p.estimated):>6} {interval:>13} {_fmt(error):>6} {p.verdict:>9} {p.seconds:>5.0f}  "
            f"{_retrain_text(p.retrain)}")


def summary(result: BenchResult) -> str:
    gap = result.gap_closed
    unknown = "" if result.server_knows_pseudo_setting else " (this server has no ML_RETRAIN_PSEUDO_LABELS setting)"
    gap_text = "-" if gap is None else f"{100 * gap:.0f} %"
    lines = [
        (f"pseudo-labels {'on' if result.pseudo_labels else 'off'}{unknown}; labels back for "
         f"{100 * result.label_share:.0f} % of rows (seed {result.seed}); first period {result.train_rows} rows; "
         f"{len(result.periods)} periods; {result.seconds:.0f} s"),
        HEADER, *(_row(p) for p in result.periods),
        (f"mean accuracy: loop {result.mean('loop'):.4f}  frozen {result.mean('frozen'):.4f}  "
         f"oracle {result.mean('oracle'):.4f}"),
        (f"loop - frozen {100 * (result.mean('loop') - result.mean('frozen')):+.2f} points; "
         f"share of the frozen->oracle gap closed: {gap_text}"),
        (f"estimated vs realised accuracy: mean |error| {_fmt(result.estimate_mae)} over "
         f"{len(result.estimate_errors)} periods"),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pseudo-labels", action="store_true", help="ML_RETRAIN_PSEUDO_LABELS=true")
    parser.add_argument("--both", action="store_true", help="run without, then with pseudo-labels")
    parser.add_argument("--label-share", type=float, nargs="+", default=[1.0],
                        help="share of each period's rows whose labels come back; several values: one run each")
    parser.add_argument("--seed", type=int, nargs="+", default=[0],
                        help="which rows' labels come back (with --label-share < 1); several: one run each")
    parser.add_argument("--sample", type=float, default=1.0, help="share of each period's rows (default all)")
    parser.add_argument("--layers", type=int, nargs="+", default=[32])
    parser.add_argument("--max-iter", type=int, default=40)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {time.strftime('%Y-%m-%d %H:%M')}")
    results = []
    runs = [(share, seed, pseudo) for share in args.label_share for seed in args.seed
            for pseudo in ((False, True) if args.both else (args.pseudo_labels,))]
    for share, seed, pseudo in runs:
        result = run_benchmark(pseudo_labels=pseudo, label_share=share, seed=seed, sample=args.sample, hidden_layers=tuple(args.layers),
                               max_iter=args.max_iter, log=lambda line: print(line, flush=True))
        print(summary(result), flush=True)
        print(f"load average {os.getloadavg()[0]:.1f}")
        results.append(result)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) | {"gap_closed": r.gap_closed, "estimate_mae": r.estimate_mae}
                                         for r in results], indent=1, default=str))


if __name__ == "__main__":
    main()
