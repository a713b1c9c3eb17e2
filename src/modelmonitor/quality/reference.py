"""Reference profiles from a training file (CSV or Parquet)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Iterator
from typing import Any

from modelmonitor.quality.extract import scalar
from modelmonitor.quality.profile import Scalar, WindowProfile

__all__ = ["ReferenceFileError", "profile_rows", "read_table"]

#: Column names read as the model's output rather than an input feature.
PREDICTION_COLUMNS = ("prediction", "target", "label")


class ReferenceFileError(ValueError):
    """The file is not a table this reader understands (the message says why)."""


def _cell(text: str) -> Scalar:
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else None


def _csv_rows(data: bytes) -> Iterator[dict[str, Scalar]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ReferenceFileError("the CSV file is not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise ReferenceFileError("the CSV file has no header row")
    for row in reader:
        yield {k: _cell(v or "") for k, v in row.items() if k is not None}


def _parquet_rows(data: bytes) -> Iterator[dict[str, Scalar]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ReferenceFileError("reading Parquet needs pyarrow (pip install pyarrow)") from None
    try:
        table = pq.read_table(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds for a bad file
        raise ReferenceFileError(f"not a Parquet file: {exc}") from None
    columns: dict[str, list[Any]] = table.to_pydict()
    for i in range(table.num_rows):
        yield {name: scalar(values[i]) for name, values in columns.items()}


def read_table(
    data: bytes, *, filename: str = "", content_type: str = ""
) -> Iterator[dict[str, Scalar]]:
    """Rows of a CSV or Parquet file (Parquet by its magic bytes, name or type)."""
    if data[:4] == b"PAR1" or filename.endswith(".parquet") or "parquet" in content_type:
        return _parquet_rows(data)
    return _csv_rows(data)


def profile_rows(
    rows: Iterable[dict[str, Scalar]], *, prediction_column: str | None = None
) -> WindowProfile:
    """A reference profile: every column a feature, except the prediction column(s)."""
    profile = WindowProfile()
    outputs: tuple[str, ...] = (prediction_column,) if prediction_column else PREDICTION_COLUMNS
    for row in rows:
        features = {k: v for k, v in row.items() if k not in outputs}
        column = next((k for k in outputs if k in row), None)
        profile.add_row(features, seen=features.keys())
        if column is not None:
            profile.add_outputs({"prediction": _label(row[column])})
    if profile.rows == 0:
        raise ReferenceFileError("the file has no data rows")
    return profile


def _label(value: Scalar) -> Scalar:
    # Whole numbers in a label column are class labels, as the response reader sees them.
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value
