"""The cluster totals behave the same in memory and in Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from modelmonitor.events import RequestEvent
from modelmonitor.telemetry import ClusterMetrics, RequestMetrics, create_cluster
from modelmonitor.telemetry._requests import LAYOUT
from tests.helpers import make_events


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.services)])
def cluster_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture
async def cluster(cluster_url: str) -> AsyncIterator[ClusterMetrics]:
    totals = create_cluster(cluster_url)
    await totals.connect()
    yield totals
    await totals.close()


def _observe(events: list[RequestEvent]) -> RequestMetrics:
    metrics = RequestMetrics()
    metrics.observe(events)
    return metrics


async def test_two_workers_deltas_sum_to_every_event(cluster: ClusterMetrics) -> None:
    events = make_events(600, start=0.0, seed=3, error_share=0.1)
    first, second = RequestMetrics(), RequestMetrics()
    first.observe(events[:200])
    second.observe(events[200:400])
    await cluster.add(first.take_delta())
    await cluster.add(second.take_delta())
    first.observe(events[400:])
    await cluster.add(first.take_delta())
    await cluster.add(second.take_delta())  # nothing new: adds nothing
    totals = await cluster.read()
    expected = _observe(events).snapshot()
    assert set(totals.series) == set(expected.series)
    for key, values in expected.series.items():
        assert totals.series[key] == pytest.approx(values)
    assert sum(v[LAYOUT.requests] for v in totals.series.values()) == 600


async def test_folded_counts_are_summed(cluster: ClusterMetrics) -> None:
    metrics = RequestMetrics(max_series_per_service=1)
    metrics.observe(make_events(50, start=0.0, seed=4))
    delta = metrics.take_delta()
    assert delta.folded
    await cluster.add(delta)
    await cluster.add(delta)
    assert (await cluster.read()).folded == {s: 2 * n for s, n in delta.folded.items()}
