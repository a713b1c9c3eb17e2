from pathlib import Path

import pytest

from modelmonitor.proxy.spool import FileSpool


async def test_oldest_first_and_give_back_to_the_front(tmp_path: Path) -> None:
    spool = FileSpool(tmp_path, max_bytes=10_000)
    for index in range(3):
        assert await spool.put(f"batch-{index}".encode(), events=index + 1)
    assert spool.spooled == 6
    assert await spool.take() == (b"batch-0", 1)
    await spool.give_back(b"batch-0", 1)
    taken = [await spool.take() for _ in range(3)]
    assert taken == [(b"batch-0", 1), (b"batch-1", 2), (b"batch-2", 3)]
    assert await spool.take() is None
    assert spool.spooled == 0
    assert not list(tmp_path.iterdir())


async def test_bounded_by_bytes(tmp_path: Path) -> None:
    spool = FileSpool(tmp_path, max_bytes=100)
    assert await spool.put(b"x" * 60, events=10)
    assert not await spool.put(b"y" * 60, events=10)  # would exceed 100 bytes
    assert spool.spooled == 10
    assert spool.size_bytes <= 100


async def test_survives_a_restart_and_ignores_torn_files(tmp_path: Path) -> None:
    first = FileSpool(tmp_path, max_bytes=10_000)
    await first.put(b"kept", events=7)
    (tmp_path / "junk.batch").write_bytes(b"\x00")  # not a sequence number
    (tmp_path / "00000000000000000001.tmp").write_bytes(b"half")  # a torn write
    again = FileSpool(tmp_path, max_bytes=10_000)
    assert again.spooled == 7
    assert await again.take() == (b"kept", 7)


def test_rejects_a_useless_size(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        FileSpool(tmp_path, max_bytes=0)
