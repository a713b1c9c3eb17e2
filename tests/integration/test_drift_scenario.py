"""The drift scenario in simulated time: a scikit-learn model's traffic, steady, then shifted.

Sampled exchanges go through the worker's quality processor into SQLite, exactly as
the proxy would ship them; drift is read back the way the API and the alert rules do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelmonitor.alerts.rules import parse_rule
from modelmonitor.demo.tabular import feature_names, traffic_rows, train_tabular
from modelmonitor.events import EventBatch, EventIdFactory, PayloadSample, RequestEvent
from modelmonitor.quality.alerting import DriftEvaluator
from modelmonitor.quality.config import DriftConfig, SamplingConfig
from modelmonitor.quality.processor import QualityProcessor
from modelmonitor.quality.reports import drift_report
from modelmonitor.quality.store import QualityStore, create_quality_store
from tests.helpers import proxy_stats

HOUR = 3600.0
T0 = 1_800_000_000.0 - 1_800_000_000.0 % HOUR
REQUESTS_PER_HOUR = 240
ROWS_PER_REQUEST = 10
SHIFTED = {"magnesium"}
CONFIG = DriftConfig(window=HOUR, reference_hours=4)


@pytest.fixture(scope="module")
def model() -> Any:
    return train_tabular()


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    quality = create_quality_store(f"sqlite:///{tmp_path / 'q.db'}")
    await quality.connect()
    yield quality
    await quality.close()


async def send_hours(
    processor: QualityProcessor,
    model: Any,
    *,
    first_hour: int,
    hours: int,
    rng: np.random.Generator,
    **shift: Any,
) -> None:
    """One simulated hour per batch: requests spread over the hour, each a dataframe_split."""
    ids = EventIdFactory()
    columns = feature_names()
    for hour in range(first_hour, first_hour + hours):
        events, samples = [], []
        rows = traffic_rows(ROWS_PER_REQUEST * REQUESTS_PER_HOUR, rng=rng, **shift)
        table = [[row[c] for c in columns] for row in rows]
        predicted = model.predict(np.asarray(table, dtype=object)).tolist()
        for i in range(REQUESTS_PER_HOUR):
            part = slice(i * ROWS_PER_REQUEST, (i + 1) * ROWS_PER_REQUEST)
            data, predictions = table[part], predicted[part]
            event = RequestEvent(
                ids(),
                T0 + hour * HOUR + i * HOUR / REQUESTS_PER_HOUR,
                "wine",
                "POST",
                "/invocations",
                "/invocations",
                200,
                0.01,
                0.005,
                1000,
                50,
            )
            body = {"dataframe_split": {"columns": columns, "data": data}}
            events.append(event)
            samples.append(
                PayloadSample(
                    event.id,
                    json.dumps(body).encode(),
                    json.dumps({"predictions": predictions}).encode(),
                )
            )
        await processor(EventBatch(proxy_stats(), events, samples))
        await processor.flush()


def drifted(result: Any) -> set[str]:
    return {f.name for f in result.report.features if f.drifted}


async def test_only_the_shifted_features_drift_and_only_after_the_shift(
    store: QualityStore, model: Any
) -> None:
    processor = QualityProcessor(store=store, services={"wine": SamplingConfig(rate=1.0)})
    rng = np.random.default_rng(7)
    steady_hours, shifted_hours = 24, 2
    await send_hours(processor, model, first_hour=0, hours=steady_hours, rng=rng)
    rule = parse_rule(
        {
            "kind": "drift",
            "name": "any drift",
            "metric": "drift_score",
            "threshold": 0,
            "window": "1h",
        }
    )
    evaluator = DriftEvaluator(store, configs={"wine": CONFIG}, refresh_seconds=0)

    # A long steady stretch: nothing drifts in any window after the reference period.
    for hour in range(int(CONFIG.reference_hours), steady_hours):
        now = T0 + (hour + 1) * HOUR
        result = await drift_report(
            store, service="wine", reference=None, start=now - HOUR, end=now, config=CONFIG, now=now
        )
        assert result.report.current_rows == REQUESTS_PER_HOUR * ROWS_PER_REQUEST
        assert drifted(result) == set(), (hour, [(f.name, f.score) for f in result.report.features])
        assert not [o.name for o in result.report.outputs if o.drifted], hour
        evaluation = await evaluator.evaluate(rule, service="wine", now=now)
        assert not evaluation.active, (hour, evaluation)

    # One feature moves by half a standard deviation and the partner channel triples.
    await send_hours(
        processor,
        model,
        first_hour=steady_hours,
        hours=shifted_hours,
        rng=rng,
        shift={"magnesium": 0.6},
        channel_shares={"web": 0.3, "app": 0.2, "partner": 0.5},
    )
    for hour in range(steady_hours, steady_hours + shifted_hours):
        now = T0 + (hour + 1) * HOUR
        result = await drift_report(
            store, service="wine", reference=None, start=now - HOUR, end=now, config=CONFIG, now=now
        )
        assert drifted(result) == SHIFTED | {"channel"}, hour
        assert result.drift_began_at == T0 + steady_hours * HOUR
        assert set(result.report.top_features) >= SHIFTED | {"channel"}
        evaluation = await evaluator.evaluate(rule, service="wine", now=now)
        assert evaluation.active and evaluation.value is not None and evaluation.value > 0
