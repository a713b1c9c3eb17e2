"""The demo's KServe V2 / Open Inference Protocol endpoints for its scikit-learn models."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

__all__ = ["DEMO_VERSIONS", "add_v2_routes"]

#: The version each demo model answers as.
DEMO_VERSIONS = {"iris": "3", "wine": "1"}


class Tensor(BaseModel):
    name: str
    shape: list[int] = Field(min_length=1, max_length=4)
    datatype: str
    data: list[float] = Field(min_length=1, max_length=100_000)


class InferRequest(BaseModel):
    id: str | None = None
    inputs: list[Tensor] = Field(min_length=1, max_length=1)


def add_v2_routes(
    app: FastAPI,
    *,
    models: dict[str, Any],
    behave: Callable[[], Awaitable[None]],
) -> None:
    """``POST /v2/models/{name}[/versions/{version}]/infer`` and model metadata."""

    def infer(name: str, version: str | None, body: InferRequest) -> dict[str, Any]:
        if name not in models or (version is not None and version != DEMO_VERSIONS[name]):
            raise HTTPException(status_code=404, detail=f"unknown model {name!r} {version or ''}")
        model, _, width = models[name]
        tensor = body.inputs[0]
        rows = int(np.prod(tensor.shape)) // width if tensor.shape[-1] == width else 0
        if not rows or rows * width != len(tensor.data):
            raise HTTPException(status_code=400, detail=f"{name} takes shape [n, {width}]")
        labels = model.predict(np.asarray(tensor.data, dtype=float).reshape(rows, width))
        output = {"name": "predict", "shape": [rows], "datatype": "INT64"}
        output["data"] = [int(label) for label in labels]
        answer = {"model_name": name, "model_version": DEMO_VERSIONS[name], "outputs": [output]}
        if body.id is not None:
            answer["id"] = body.id
        return answer

    @app.get("/v2/models/{name}")
    async def metadata(name: str) -> dict[str, Any]:
        if name not in models:
            raise HTTPException(status_code=404, detail=f"unknown model {name!r}")
        width = models[name][2]
        inputs = [{"name": "input-0", "datatype": "FP32", "shape": [-1, width]}]
        return {
            "name": name,
            "versions": [DEMO_VERSIONS[name]],
            "platform": "sklearn",
            "inputs": inputs,
        }

    @app.post("/v2/models/{name}/infer")
    async def infer_latest(name: str, body: InferRequest) -> dict[str, Any]:
        await behave()
        return infer(name, None, body)

    @app.post("/v2/models/{name}/versions/{version}/infer")
    async def infer_version(name: str, version: str, body: InferRequest) -> dict[str, Any]:
        await behave()
        return infer(name, version, body)
