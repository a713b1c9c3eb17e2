"""Simulated time, in-process live windows and an in-memory alert store, for the
alerting and anomaly tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from modelmonitor.alerts.store.sqlite import SQLiteAlertStore
from modelmonitor.live.memory import MemoryLiveState
from tests.alert_helpers import SimClock


@pytest.fixture
def clock() -> SimClock:
    return SimClock()


@pytest.fixture
def live(clock: SimClock) -> MemoryLiveState:
    return MemoryLiveState(clock=clock)


@pytest.fixture
async def store() -> AsyncIterator[SQLiteAlertStore]:
    store = SQLiteAlertStore("sqlite://:memory:")
    await store.connect()
    yield store
    await store.close()
