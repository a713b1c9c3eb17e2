"""Features and predictions from the common model-API payload shapes.

Requests: MLflow / scikit-learn scoring (``dataframe_split``, ``dataframe_records``,
``instances``, ``inputs``), KServe V1 (``instances``) and V2 (``inputs`` tensors),
plain JSON objects and arrays of them, or a per-service mapping of JSON paths to
feature names. Responses: ``predictions`` (MLflow, KServe V1, TF Serving), V2
``outputs`` tensors, a bare list, or ``prediction``; each item is a label, a
regression value, or class probabilities. Language-model exchanges (OpenAI-style
``messages``/``prompt`` and ``choices``) give lengths, language, refusals and
empty answers instead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

from modelmonitor.quality.profile import Scalar
from modelmonitor.quality.redact import REDACTED

__all__ = [
    "PREDICTION",
    "extract_predictions",
    "extract_rows",
    "mapped_rows",
    "scalar",
]

#: The output name a prediction's label or value is profiled under.
PREDICTION = "prediction"
_MAX_ROWS = 10_000
_MAX_COLUMNS = 512


def scalar(value: Any) -> Scalar:
    """A profiled value: numbers stay numbers, booleans and strings are categories."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return None if value == REDACTED else value
    return None  # nested structures are not features


def _flatten(obj: Mapping[str, Any], prefix: str = "", depth: int = 0) -> dict[str, Scalar]:
    row: dict[str, Scalar] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and depth < 3:
            row.update(_flatten(value, f"{name}.", depth + 1))
        elif not isinstance(value, list | dict):
            row[name] = scalar(value)
        if len(row) >= _MAX_COLUMNS:
            break
    return row


def _positional(values: list[Any], names: list[str] | None = None) -> dict[str, Scalar]:
    if names is not None and len(names) == len(values):
        return {str(n): scalar(v) for n, v in zip(names, values, strict=True)}
    return {str(i): scalar(v) for i, v in enumerate(values[:_MAX_COLUMNS])}


def _rows_of(items: Any, names: list[str] | None = None) -> list[dict[str, Scalar]]:
    if isinstance(items, dict):
        return [_flatten(items)]
    if not isinstance(items, list):
        return [{"0": scalar(items)}] if scalar(items) is not None else []
    rows: list[dict[str, Scalar]] = []
    for item in items[:_MAX_ROWS]:
        if isinstance(item, dict):
            rows.append(_flatten(item))
        elif isinstance(item, list):
            rows.append(_positional(item, names))
        else:
            rows.append({"0" if names is None else names[0]: scalar(item)})
    return rows


def _columns_dict(columns: Mapping[str, Any]) -> list[dict[str, Scalar]]:
    """``{"a": [1, 2], "b": [3, 4]}`` (MLflow ``inputs`` as named columns)."""
    lists = {k: v for k, v in columns.items() if isinstance(v, list)}
    if not lists:
        return [_flatten(columns)]
    length = min(len(v) for v in lists.values())
    return [{k: scalar(v[i]) for k, v in lists.items()} for i in range(min(length, _MAX_ROWS))]


def _v2_tensors(tensors: list[Any]) -> list[dict[str, Scalar]]:
    """KServe V2 / Open Inference: named tensors, row-major ``data``, ``shape`` [N, k]."""
    rows: list[dict[str, Scalar]] = []
    for tensor in tensors:
        name = str(tensor.get("name", "input"))
        data = _flat(tensor.get("data", []))
        shape = tensor.get("shape") or [len(data)]
        width = int(math.prod(shape[1:])) if len(shape) > 1 else 1
        width = max(width, 1)
        count = min(len(data) // width, _MAX_ROWS)
        while len(rows) < count:
            rows.append({})
        for i in range(count):
            chunk = data[i * width : (i + 1) * width]
            if width == 1:
                rows[i][name] = scalar(chunk[0])
            else:
                for j, value in enumerate(chunk[:_MAX_COLUMNS]):
                    rows[i][f"{name}.{j}"] = scalar(value)
    return rows


def _flat(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    out: list[Any] = []
    for item in data:
        out.extend(_flat(item) if isinstance(item, list) else [item])
    return out


def _is_v2(tensors: Any) -> bool:
    return (
        isinstance(tensors, list)
        and bool(tensors)
        and all(isinstance(t, dict) and "data" in t and "name" in t for t in tensors)
    )


def extract_rows(body: Any) -> list[dict[str, Scalar]]:
    """Feature rows of a parsed JSON request body (empty when the shape is unknown)."""
    if isinstance(body, list):
        return _rows_of(body)
    if not isinstance(body, dict):
        return []
    split = body.get("dataframe_split")
    if isinstance(split, dict):
        columns = split.get("columns")
        names = [str(c) for c in columns] if isinstance(columns, list) else None
        return _rows_of(split.get("data", []), names)
    if "dataframe_records" in body:
        return _rows_of(body["dataframe_records"])
    if "instances" in body:
        return _rows_of(body["instances"])
    inputs = body.get("inputs")
    if inputs is not None:
        if _is_v2(inputs):
            return _v2_tensors(inputs)
        if isinstance(inputs, dict):
            return _columns_dict(inputs)
        return _rows_of(inputs)
    if {"messages", "prompt", "input"} & body.keys():
        return []  # a language-model request: see extract_llm
    return [_flatten(body)]


_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\*|\d+)\]")


def _walk(value: Any, segments: list[str]) -> Iterator[Any]:
    if not segments:
        yield value
        return
    head, rest = segments[0], segments[1:]
    if head == "*":
        if isinstance(value, list):
            for item in value[:_MAX_ROWS]:
                yield from _walk(item, rest)
    elif head.isdigit() and isinstance(value, list):
        index = int(head)
        if index < len(value):
            yield from _walk(value[index], rest)
    elif isinstance(value, dict) and head in value:
        yield from _walk(value[head], rest)


def _segments(path: str) -> list[str]:
    path = path.removeprefix("$").lstrip(".")
    return [m.group(1) or m.group(2) for m in _SEGMENT.finditer(path)]


def mapped_rows(body: Any, mapping: Mapping[str, str]) -> list[dict[str, Scalar]]:
    """Rows from ``{json_path: feature}``: ``$.data[*].age``; ``[*]`` walks the rows."""
    columns = {
        name: [scalar(v) for v in _walk(body, _segments(path))] for path, name in mapping.items()
    }
    length = max((len(v) for v in columns.values()), default=0)
    return [
        {name: values[i] if i < len(values) else None for name, values in columns.items()}
        for i in range(min(length, _MAX_ROWS))
    ]


def _prediction(item: Any, kind: str) -> dict[str, Scalar]:
    if isinstance(item, dict):
        label = next(
            (item[k] for k in ("label", "class", "prediction", "predicted") if k in item), None
        )
        out = {PREDICTION: _label_or_value(label, kind)} if label is not None else {}
        probs = next((item[k] for k in ("probabilities", "scores", "probs") if k in item), None)
        if isinstance(probs, list):
            out.update(_probabilities(probs, with_label=label is None))
        elif label is None and "score" in item:
            out["score"] = scalar(item["score"])
        return out
    if isinstance(item, list):
        return _probabilities(item, with_label=True)
    return {PREDICTION: _label_or_value(item, kind)}


def _label_or_value(value: Any, kind: str) -> Scalar:
    if kind == "value" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind == "label" or isinstance(value, str | bool):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(value, int) or (
        isinstance(value, float) and value.is_integer() and kind != "value"
    ):
        return str(int(value))  # whole numbers read as class labels unless told otherwise
    return scalar(value)


def _probabilities(values: list[Any], *, with_label: bool) -> dict[str, Scalar]:
    numbers = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(numbers) != len(values) or not numbers:
        return {}
    out: dict[str, Scalar] = {f"proba.{i}": v for i, v in enumerate(numbers[:_MAX_COLUMNS])}
    if with_label:
        out[PREDICTION] = str(max(range(len(numbers)), key=numbers.__getitem__))
    return out


def extract_predictions(body: Any, *, kind: str = "auto") -> list[dict[str, Scalar]]:
    """Per-row outputs of a parsed JSON response; ``kind`` is auto, label or value."""
    items: Any = None
    if isinstance(body, list):
        items = body
    elif isinstance(body, dict):
        if _is_v2(body.get("outputs")):
            return _v2_outputs(body["outputs"], kind)
        for key in ("predictions", "outputs", "prediction", "predicted", "labels", "result"):
            if key in body:
                items = body[key]
                break
    if items is None:
        return []
    if not isinstance(items, list):
        items = [items]
    return [p for p in (_prediction(item, kind) for item in items[:_MAX_ROWS]) if p]


def _v2_outputs(tensors: list[Any], kind: str) -> list[dict[str, Scalar]]:
    first = tensors[0]
    data = first.get("data", [])
    shape = first.get("shape") or [len(data)]
    flat = _flat(data)
    if len(shape) > 1 and shape[-1] > 1:
        width = int(shape[-1])
        return [
            _probabilities(flat[i * width : (i + 1) * width], with_label=True)
            for i in range(min(len(flat) // width, _MAX_ROWS))
        ]
    return [{PREDICTION: _label_or_value(v, kind)} for v in flat[:_MAX_ROWS]]
