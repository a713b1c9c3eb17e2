"""A tabular scikit-learn model behind MLflow's scoring protocol (``POST /invocations``).

Trained at start-up on scikit-learn's bundled wine data plus one categorical input,
``channel`` (how the request came in: web, app or partner, in fixed shares), so
drift demos and tests have numeric and categorical features and class predictions.
:func:`training_rows` and :func:`traffic_rows` give the training table and rows
drawn like it (optionally shifted) for traffic generators and tests.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException, Request

__all__ = [
    "CHANNEL_SHARES",
    "add_invocations_route",
    "feature_names",
    "traffic_rows",
    "train_tabular",
    "training_rows",
]

#: How requests are split across channels in the training data.
CHANNEL_SHARES = {"web": 0.5, "app": 0.3, "partner": 0.2}


@functools.cache
def _wine() -> tuple[list[str], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    from sklearn.datasets import load_wine

    wine = load_wine()
    return [str(n) for n in wine.feature_names], np.asarray(wine.data), np.asarray(wine.target)


def feature_names() -> list[str]:
    """The model's input columns, in order: wine's thirteen, then ``channel``."""
    return [*_wine()[0], "channel"]


def training_rows(seed: int = 0) -> tuple[list[dict[str, Any]], list[int]]:
    """The training table (wine plus a ``channel`` column) and its labels."""
    names, data, target = _wine()
    rng = np.random.default_rng(seed)
    channels = rng.choice(list(CHANNEL_SHARES), size=len(data), p=list(CHANNEL_SHARES.values()))
    rows = [
        {**dict(zip(names, map(float, row), strict=True)), "channel": str(channel)}
        for row, channel in zip(data, channels, strict=True)
    ]
    return rows, [int(t) for t in target]


def traffic_rows(
    count: int,
    *,
    rng: np.random.Generator,
    shift: dict[str, float] | None = None,
    channel_shares: dict[str, float] | None = None,
) -> list[dict[str, Any]]:
    """Rows drawn like the training data (a training row plus a little noise).

    ``shift`` moves a feature by that many of its standard deviations;
    ``channel_shares`` replaces the channel mix.
    """
    names, data, _ = _wine()
    std = data.std(axis=0)
    picks = rng.integers(0, len(data), size=count)
    noise = rng.normal(0.0, 0.05, size=(count, len(names))) * std
    values = data[picks] + noise
    for name, sigmas in (shift or {}).items():
        values[:, names.index(name)] += sigmas * std[names.index(name)]
    shares = channel_shares or CHANNEL_SHARES
    channels = rng.choice(list(shares), size=count, p=list(shares.values()))
    return [
        {**dict(zip(names, (round(float(v), 4) for v in row), strict=True)), "channel": str(c)}
        for row, c in zip(values, channels, strict=True)
    ]


def train_tabular() -> Any:
    """The pipeline: scaled numbers, one-hot channel, logistic regression."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rows, target = training_rows()
    names = feature_names()[:-1]
    matrix = _matrix(rows)
    transform = ColumnTransformer(
        [
            ("numbers", StandardScaler(), list(range(len(names)))),
            ("channel", OneHotEncoder(handle_unknown="ignore"), [len(names)]),
        ]
    )
    return make_pipeline(transform, LogisticRegression(max_iter=2000)).fit(matrix, target)


def _matrix(rows: list[dict[str, Any]]) -> np.ndarray[Any, Any]:
    columns = feature_names()
    table = np.empty((len(rows), len(columns)), dtype=object)
    for i, row in enumerate(rows):
        for j, name in enumerate(columns):
            table[i, j] = row[name]
    return table


def _rows_from(body: Any) -> list[dict[str, Any]]:
    """MLflow's input shapes: dataframe_split, dataframe_records, instances, inputs."""
    if not isinstance(body, dict):
        raise HTTPException(status_code=400, detail="expected a JSON object")
    if "dataframe_split" in body:
        split = body["dataframe_split"]
        return [dict(zip(split["columns"], row, strict=True)) for row in split["data"]]
    for key in ("dataframe_records", "instances"):
        if key in body:
            return list(body[key])
    if "inputs" in body and isinstance(body["inputs"], dict):
        columns = body["inputs"]
        length = min(len(v) for v in columns.values())
        return [{k: v[i] for k, v in columns.items()} for i in range(length)]
    raise HTTPException(
        status_code=400,
        detail="expected dataframe_split, dataframe_records, instances or inputs",
    )


def add_invocations_route(app: FastAPI, *, behave: Callable[[], Awaitable[None]]) -> None:
    """``POST /invocations`` as MLflow's scoring server answers it."""
    model = train_tabular()

    @app.post("/invocations")
    async def invocations(request: Request) -> dict[str, Any]:
        await behave()
        try:
            body = await request.json()
        except ValueError:
            raise HTTPException(status_code=400, detail="body is not JSON") from None
        try:
            rows = _rows_from(body)
            missing = [f for f in feature_names() if any(f not in row for row in rows)]
            if missing or not rows:
                raise HTTPException(status_code=400, detail=f"missing columns: {missing}")
            predictions = model.predict(_matrix(rows))
        except (KeyError, TypeError, ValueError) as exc:
            raise HTTPException(status_code=400, detail=f"bad input: {exc}") from None
        return {"predictions": [int(p) for p in predictions]}
