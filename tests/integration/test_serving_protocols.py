"""Each serving protocol through the proxy, in its real request and response shapes:
the recorded protocol, route, model, version and task match."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from modelmonitor.protocols.config import ProtocolName
from modelmonitor.settings import ServiceConfig
from tests.integration.proxy_upstreams import (
    Request,
    base_url,
    events,
    running_proxy,
    running_upstream,
    wait_for_events,
)

_IRIS = {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}
_V2_REQUEST = {
    "id": "42",
    "inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": [6.8] * 8}],
}


def _v2_answer(model: str, version: str) -> dict[str, Any]:
    return {
        "model_name": model,
        "model_version": version,
        "id": "42",
        "parameters": {},
        "outputs": [{"name": "output-0", "shape": [2], "datatype": "INT64", "data": [1, 1]}],
    }


# (config overrides, path, request body, response body, expected fields)
CASES: list[tuple[dict[str, Any], str, Any, Any, dict[str, str]]] = [
    (
        {},
        "/v1/models/sklearn-iris:predict",
        _IRIS,
        {"predictions": [1, 1]},
        {
            "protocol": "kserve-v1",
            "model": "sklearn-iris",
            "model_version": "",
            "task": "predict",
            "route": "/v1/models/{model}:predict",
        },
    ),
    (
        {},
        "/v1/models/sklearn-iris:explain",
        _IRIS,
        {"explanations": []},
        {"protocol": "kserve-v1", "model": "sklearn-iris", "task": "explain"},
    ),
    (
        {},
        "/v2/models/resnet/versions/3/infer",
        _V2_REQUEST,
        _v2_answer("resnet", "3"),
        {
            "protocol": "kserve-v2",
            "model": "resnet",
            "model_version": "3",
            "task": "infer",
            "route": "/v2/models/{model}/versions/{version}/infer",
        },
    ),
    (
        {"protocol": "triton"},
        "/v2/models/densenet_onnx/infer",
        _V2_REQUEST,
        _v2_answer("densenet_onnx", "1"),  # Triton names the version that answered
        {
            "protocol": "triton",
            "model": "densenet_onnx",
            "model_version": "1",
            "route": "/v2/models/{model}/infer",
        },
    ),
    (
        {},
        "/predictions/resnet-18/2.0",
        b"\x89PNG\r\n\x1a\n fake image bytes",
        [{"tabby": 0.41, "tiger_cat": 0.35}],
        {
            "protocol": "torchserve",
            "model": "resnet-18",
            "model_version": "2.0",
            "task": "predict",
            "route": "/predictions/{model}/{version}",
        },
    ),
    (
        {},
        "/predictions/mnist",
        b"raw digit",
        [3],
        {"protocol": "torchserve", "model": "mnist", "model_version": "", "task": "predict"},
    ),
    (
        {},
        "/v1/models/half_plus_two/versions/2:predict",
        {"instances": [1.0, 2.0, 5.0]},
        {"predictions": [2.5, 3.0, 4.5]},
        {
            "protocol": "tf-serving",
            "model": "half_plus_two",
            "model_version": "2",
            "route": "/v1/models/{model}/versions/{version}:predict",
        },
    ),
    (
        {},
        "/v1/models/half_plus_two/labels/stable:regress",
        {"examples": [{"x": 1.0}]},
        {"results": [2.5]},
        {"protocol": "tf-serving", "model": "half_plus_two", "task": "regress"},
    ),
    (
        {"model": "iris-classifier", "model_version": "7"},
        "/invocations",
        {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}},
        {"predictions": [0]},
        {
            "protocol": "mlflow",
            "model": "iris-classifier",
            "model_version": "7",
            "task": "predict",
            "route": "/invocations",
        },
    ),
    (
        {"protocol": "bentoml", "model": "summarizer"},
        "/summarize",
        {"text": "a long text"},
        {"summary": "short"},
        {"protocol": "bentoml", "model": "summarizer", "task": "summarize", "route": "/summarize"},
    ),
    (
        {"model_json_field": "model"},
        "/predict",
        {"model": "wine", "features": [1, 2, 3]},
        {"prediction": "class_0"},
        {"protocol": "rest", "model": "wine", "task": "predict", "route": "/predict"},
    ),
    (
        {"protocol": "none"},
        "/v1/models/sklearn-iris:predict",
        _IRIS,
        {"predictions": [1, 1]},
        {"protocol": "", "model": "", "task": ""},
    ),
    (
        {"protocol": "openai"},
        "/v2/models/resnet/infer",
        _V2_REQUEST,
        _v2_answer("resnet", "3"),
        {"protocol": "", "model": "", "model_version": ""},
    ),
]


@pytest.mark.parametrize(("overrides", "path", "body", "answer", "expected"), CASES)
async def test_protocol_fields_are_recorded(
    overrides: dict[str, Any], path: str, body: Any, answer: Any, expected: dict[str, str]
) -> None:
    payload = json.dumps(answer).encode()

    async def handler(request: Request, _: asyncio.StreamReader, writer: Any) -> bool:
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
            % (len(payload), payload)
        )
        return True

    async with running_upstream(handler) as upstream:
        config = ServiceConfig(name="svc", upstream=upstream.url, **overrides)
        async with running_proxy(config) as (proxy, capture):
            async with httpx.AsyncClient(base_url=base_url(proxy, "svc")) as client:
                content = body if isinstance(body, bytes) else json.dumps(body).encode()
                response = await client.post(path, content=content)
            assert response.json() == answer
            await wait_for_events(capture, 1)
    (event,) = events(capture)
    assert upstream.requests[0].target == path
    for field, value in expected.items():
        assert getattr(event, field) == value, field


def test_every_protocol_name_is_covered() -> None:
    named = {c[0].get("protocol", "") for c in CASES} | {c[4].get("protocol") for c in CASES}
    assert {p.value for p in ProtocolName} - {"auto", "openai"} <= named | {"kserve-v2"}
