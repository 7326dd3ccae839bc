"""The short form of bench/bench_monitoring.py: the drift -> feedback -> retrain loop on real storm
data with a shifting label mix, through a real `mlservice serve`, must never do worse than the
first model left frozen."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_monitoring.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_monitoring", BENCH)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_the_loop_is_never_worse_than_the_frozen_first_model():
    bench = _bench()
    # 1975-1994 trains; three 8-year periods follow, half the rows each (~900-1,250 rows).
    result = bench.run_benchmark(edges=(1975, 1995, 2003, 2011, 2019), sample=0.5, hidden_layers=(16,),
                                 max_iter=40, log=lambda _line: None, timeout=300)
    print(bench.summary(result))
    assert len(result.periods) == 3
    for period in result.periods:
        assert period.rows >= 50
        for value in (period.loop, period.frozen, period.oracle):
            assert 0 < value < 1
        # The report estimated this period's accuracy without labels, and saw the labels we sent.
        assert period.estimated is not None and 0 <= period.estimated <= 1
        assert period.report_realised == pytest.approx(period.loop, abs=1e-9)
    # The first model really goes stale on this data; otherwise the comparison proves nothing.
    assert result.mean("oracle") > result.mean("frozen")
    assert result.mean("loop") >= result.mean("frozen") - 0.005, bench.summary(result)
