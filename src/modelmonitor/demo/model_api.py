"""The bundled demo model API: real scikit-learn models behind a JSON predict endpoint,
KServe V2 inference (:mod:`.kserve`) and OpenAI-compatible chat completions (:mod:`.llm`).

Two classifiers are trained at start-up on datasets that ship with scikit-learn
(iris, wine), so nothing is downloaded. Latency follows a log-normal spread with
rare slow outliers, and a small share of requests fail, so the dashboard has
something realistic to show. ``POST /admin/chaos`` makes it slower or failing on
purpose (alerting demos and tests).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from modelmonitor.demo.kserve import add_v2_routes
from modelmonitor.demo.llm import add_chat_routes
from modelmonitor.demo.tabular import add_invocations_route

__all__ = ["Chaos", "create_demo_app"]


class Chaos(BaseModel):
    """Injected faults, on top of the normal behaviour."""

    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    latency_multiplier: float = Field(default=1.0, ge=0.0, le=1000.0)
    extra_latency_ms: float = Field(default=0.0, ge=0.0, le=60_000.0)


class PredictRequest(BaseModel):
    instances: list[list[float]] = Field(min_length=1, max_length=1000)


class SimplePredictRequest(BaseModel):
    model: str = "iris"
    features: list[float]


class CompletionRequest(BaseModel):
    model: str = "tiny-lm"
    prompt: str = ""
    max_tokens: int = Field(default=16, ge=1, le=256)
    stream: bool = False


def _train() -> dict[str, Any]:
    from sklearn.datasets import load_iris, load_wine
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    models: dict[str, Any] = {}
    iris = load_iris()
    models["iris"] = (
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(
            iris.data, iris.target
        ),
        list(iris.target_names),
        iris.data.shape[1],
    )
    wine = load_wine()
    models["wine"] = (
        RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0).fit(
            wine.data, wine.target
        ),
        list(wine.target_names),
        wine.data.shape[1],
    )
    return models


def create_demo_app(*, seed: int | None = None, base_latency_ms: float = 12.0) -> FastAPI:
    models = _train()
    chaos = Chaos()
    rng = random.Random(seed)
    app = FastAPI(title="ModelMonitor demo model API", version="1.0")

    async def behave() -> None:
        """Sleep a realistic time and sometimes fail, as real model servers do."""
        delay = rng.lognormvariate(0.0, 0.5) * base_latency_ms
        if rng.random() < 0.01:
            delay += rng.uniform(150, 400)  # a cold cache, a GC pause
        delay = delay * chaos.latency_multiplier + chaos.extra_latency_ms
        await asyncio.sleep(delay / 1000.0)
        roll = rng.random()
        if roll < chaos.error_rate:
            raise HTTPException(status_code=500, detail="injected failure")
        if roll > 0.992:
            raise HTTPException(status_code=503, detail="model worker overloaded")

    def predict(name: str, rows: list[list[float]]) -> dict[str, Any]:
        if name not in models:
            raise HTTPException(status_code=404, detail=f"unknown model {name!r}")
        model, labels, width = models[name]
        if any(len(row) != width for row in rows):
            raise HTTPException(status_code=422, detail=f"model {name!r} takes {width} features")
        matrix = np.asarray(rows, dtype=float)
        probabilities = model.predict_proba(matrix)
        best = probabilities.argmax(axis=1)
        return {
            "model": name,
            "predictions": [labels[i] for i in best],
            "probabilities": [
                round(float(p[i]), 4) for p, i in zip(probabilities, best, strict=True)
            ],
        }

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        return {"models": [{"name": name, "features": spec[2]} for name, spec in models.items()]}

    @app.post("/v1/models/{name}/predict")
    async def predict_route(name: str, body: PredictRequest) -> dict[str, Any]:
        await behave()
        return predict(name, body.instances)

    @app.post("/predict")
    async def predict_simple(body: SimplePredictRequest) -> dict[str, Any]:
        await behave()
        return predict(body.model, [body.features])

    @app.post("/v1/completions", response_model=None)
    async def completions(body: CompletionRequest) -> dict[str, Any] | StreamingResponse:
        await behave()
        words = ["the", "model", "is", "fine", "and", "fast", "today", "so", "far"]
        tokens = [rng.choice(words) for _ in range(body.max_tokens)]
        if not body.stream:
            return {"model": body.model, "choices": [{"text": " ".join(tokens)}]}

        async def events() -> AsyncIterator[bytes]:
            for token in tokens:
                await asyncio.sleep(0.005 * chaos.latency_multiplier)
                chunk = {"model": body.model, "choices": [{"text": token + " "}]}
                yield f"data: {json.dumps(chunk)}\n\n".encode()
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    add_chat_routes(app, rng=rng, behave=behave)
    add_v2_routes(app, models=models, behave=behave)
    add_invocations_route(app, behave=behave)

    @app.get("/admin/chaos")
    async def get_chaos() -> Chaos:
        return chaos

    @app.post("/admin/chaos")
    async def set_chaos(update: Chaos) -> Chaos:
        for name, value in update.model_dump().items():
            setattr(chaos, name, value)
        return chaos

    return app
