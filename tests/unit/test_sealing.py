"""Stored credentials are sealed with a key from the settings or the data directory."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from modelmonitor.sealing import Sealer, SealError, load_sealer


def test_a_sealed_value_opens_with_the_same_key_only(tmp_path: Path) -> None:
    sealer = load_sealer(tmp_path)
    sealed = sealer.seal(b'{"password": "pw-1"}')
    assert "pw-1" not in sealed and sealed.startswith("sealed:")
    # The key file is private, and another process of the machine uses the same key.
    key_file = tmp_path / "secret-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_sealer(tmp_path).open(sealed) == b'{"password": "pw-1"}'
    with pytest.raises(SealError, match="MODELMONITOR_SECRET_KEY"):
        Sealer(b"another key").open(sealed)
    # A configured key wins over the file, and works on any machine.
    shared = load_sealer(tmp_path / "elsewhere", "shared-key").seal(b"x")
    assert load_sealer(tmp_path, "shared-key").open(shared) == b"x"


def test_documents_stored_before_sealing_still_read() -> None:
    assert Sealer(b"k").open('{"a": 1}') == b'{"a": 1}'


def test_a_damaged_key_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "secret-key").write_text("not hex")
    with pytest.raises(ValueError, match="secret-key is not a hex secret"):
        load_sealer(tmp_path)
