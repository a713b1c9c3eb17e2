"""The proxy's hot path stays readable: named actions and reasons, short functions."""

from __future__ import annotations

import ast
import enum
from pathlib import Path

import pytest

from modelmonitor.proxy import client
from modelmonitor.proxy.exchange import ReadBlock
from modelmonitor.proxy.http import REQUEST_SPECIAL, RESPONSE_SPECIAL, HeaderAction

#: Every module of the proxy package is on (or next to) the request path.
HOT_PATH = sorted(Path(client.__file__).parent.glob("*.py"))
MAX_LINES = 60
#: A function may be longer when a comment on its ``def`` line says why.
REASON = "# long:"


def test_header_actions_and_read_blocks_are_named() -> None:
    assert issubclass(HeaderAction, enum.IntEnum)
    assert issubclass(ReadBlock, enum.IntFlag)
    for table in (REQUEST_SPECIAL, RESPONSE_SPECIAL):
        assert all(isinstance(action, HeaderAction) for action in table.values())
    assert REQUEST_SPECIAL[b"content-length"] is HeaderAction.CONTENT_LENGTH


@pytest.mark.parametrize("path", HOT_PATH, ids=lambda path: path.name)
def test_no_hot_path_function_is_over_60_lines_without_a_reason(path: Path) -> None:
    source = path.read_text()
    lines = source.splitlines()
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_LINES
        and REASON not in lines[node.lineno - 1]
    ]
    assert not long, f"{path.name}: {', '.join(long)}"


def test_one_place_ends_an_exchange() -> None:
    """``in_flight -= 1`` and recording happen in ``_settle`` alone."""
    source = Path(client.__file__).read_text()
    assert source.count("in_flight -= 1") == 1
    assert source.count("self._record(") == 1
