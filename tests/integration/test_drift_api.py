"""The drift REST API: references from uploads and ranges, reports, and bad input named."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from modelmonitor.runtime import Parts, Runtime
from modelmonitor.settings import load_settings


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = load_settings(
        data_dir=tmp_path, api="127.0.0.1:0", target="http://127.0.0.1:1", target_name="svc"
    )
    runtime = Runtime(settings, parts=Parts(proxy=False, worker=True, api=True))
    await runtime.start()
    try:
        async with httpx.AsyncClient(base_url=runtime.api_url, timeout=30) as client:
            yield client
    finally:
        await runtime.stop()


CSV = "age,city,prediction\n31,paris,1\n40,rome,0\n,paris,1\n52,oslo,1\n"


async def test_upload_list_and_delete_a_reference(api: httpx.AsyncClient) -> None:
    put = await api.put(
        "/api/v1/services/svc/references/training",
        params={"filename": "train.csv"},
        content=CSV,
        headers={"Content-Type": "text/csv"},
    )
    assert put.status_code == 201, put.text
    assert put.json()["source"] == {"kind": "file", "file": "train.csv", "rows": 4.0}
    listed = (await api.get("/api/v1/services/svc/references")).json()["references"]
    assert [r["name"] for r in listed] == ["training"]
    # No sampled traffic yet: the report says what is missing, not a server error.
    report = await api.get("/api/v1/services/svc/drift", params={"reference": "training"})
    assert report.status_code == 200
    assert (
        report.json()["report"]["current_rows"] == 0 and report.json()["report"]["features"] == []
    )
    assert (await api.delete("/api/v1/services/svc/references/training")).status_code == 204
    assert (await api.delete("/api/v1/services/svc/references/training")).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "field"),
    [
        ("put", "/api/v1/services/svc/references/bad name!", {"content": CSV}, 422, "name"),
        ("put", "/api/v1/services/svc/references/t", {"content": "a,b\n"}, 422, "body"),
        (
            "put",
            "/api/v1/services/svc/references/t",
            {"content": "\xff\xfe", "headers": {}},
            422,
            "body",
        ),
        ("put", "/api/v1/services/svc/references/t", {"json": {"start": "-1h"}}, 422, "body"),
        (
            "put",
            "/api/v1/services/svc/references/t",
            {"json": {"start": "-1h", "end": "now"}},
            422,
            "start",
        ),
        ("get", "/api/v1/services/svc/drift", {"params": {"start": "soon"}}, 422, "start"),
        ("get", "/api/v1/services/svc/drift", {"params": {"format": "pdf"}}, 422, "format"),
        ("get", "/api/v1/services/svc/drift/history", {"params": {"step": "often"}}, 422, "step"),
        ("get", "/api/v1/services/svc/drift", {"params": {"reference": "nope"}}, 404, None),
        ("get", "/api/v1/services/other/drift", {}, 404, None),
        ("get", "/api/v1/samples/unknown-id", {}, 404, None),
        ("get", "/api/v1/samples", {"params": {"limit": 0}}, 422, "limit"),
    ],
)
async def test_bad_input_names_the_field(
    api: httpx.AsyncClient,
    method: str,
    path: str,
    kwargs: dict[str, object],
    status: int,
    field: str | None,
) -> None:
    answer = await getattr(api, method)(path, **kwargs)
    assert answer.status_code == status, answer.text
    detail = answer.json()["detail"]
    if field is not None:
        assert any(item["loc"][-1] == field for item in detail), detail
