import pytest

from modelmonitor.live.memory import MemoryLiveState
from modelmonitor.live.windows import bucket_plan
from tests.helpers import make_batch, make_events


def test_windows_include_the_current_second() -> None:
    fine, coarse, covered = bucket_plan(10, 1000.25)
    assert fine == list(range(990, 1001)) and coarse == []
    assert covered == 10.25
    fine, coarse, covered = bucket_plan(60, 1003.5)
    assert fine == [1000, 1001, 1002, 1003]
    assert coarse == [990, 980, 970, 960, 950]
    assert covered == 53.5


async def test_a_request_is_visible_as_soon_as_it_is_recorded() -> None:
    now = 2_000_000_000.4
    live = MemoryLiveState(clock=lambda: now)
    events = make_events(5, service="svc", start=now - 0.35, spread=0.1, error_share=0.0)
    await live.record(make_batch(events))
    for seconds in (1, 10, 60, 300):
        window = await live.window(service="svc", seconds=seconds)
        assert window.requests == 5, seconds
    one = await live.window(service="svc", seconds=1)
    assert one.rps == pytest.approx(5 / 1.4, rel=1e-6)


async def test_old_requests_leave_the_window() -> None:
    now = 2_000_000_000.0
    live = MemoryLiveState(clock=lambda: now)
    await live.record(make_batch(make_events(3, service="svc", start=now - 30, spread=1)))
    assert (await live.window(service="svc", seconds=10)).requests == 0
    assert (await live.window(service="svc", seconds=60)).requests == 3
