"""Route templates keep metric cardinality bounded and honour user patterns."""

from __future__ import annotations

import pytest

from modelmonitor.proxy.routes import RouteTemplater, collapse_segment, route_template


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/", "/"),
        ("/predict", "/predict"),
        ("/v1/users/42/items", "/v1/users/{id}/items"),
        ("/v1/users/42/items?x=1&y=2", "/v1/users/{id}/items"),
        ("/a/550e8400-e29b-41d4-a716-446655440000", "/a/{id}"),
        ("/a/550e8400e29b41d4a716446655440000", "/a/{id}"),
        ("/blobs/deadbeefdeadbeef00", "/blobs/{id}"),
        ("/blobs/DEADBEEFCAFEBABE", "/blobs/{id}"),
        ("/t/usr_3f9a8b7c6d5e4a", "/t/{id}"),
        ("/c/cus_NffrFeUfNV2Hib", "/c/{id}"),
        ("/u/01ARZ3NDEKTSV4RRFFQ69G5FAV", "/u/{id}"),
        ("/d/2024-01-01", "/d/{id}"),
        ("/x/" + "a" * 80, "/x/{id}"),
        ("/v1/models/llama-3-70b-instruct/predict", "/v1/models/llama-3-70b-instruct/predict"),
        ("/v1/models/resnet50/predict", "/v1/models/resnet50/predict"),
        ("/v1/gpt-4o", "/v1/gpt-4o"),
        ("/v2.1/health", "/v2.1/health"),
        ("/items/", "/items/"),
    ],
)
def test_automatic_templates(path: str, template: str) -> None:
    assert route_template(path) == template


def test_user_patterns_win_over_collapsing() -> None:
    templater = RouteTemplater(["/v1/models/{model}/predict", "/v1/models/{model}/versions/{v}"])
    assert templater("/v1/models/iris/predict") == "/v1/models/{model}/predict"
    assert templater("/v1/models/123/predict") == "/v1/models/{model}/predict"
    assert templater("/v1/models/iris/predict/") == "/v1/models/{model}/predict"
    assert templater("/v1/models/iris/versions/3") == "/v1/models/{model}/versions/{v}"
    # Not matching a pattern: automatic collapsing still applies.
    assert templater("/v1/models/iris/42") == "/v1/models/iris/{id}"
    # A placeholder matches one segment only.
    assert templater("/v1/models/a/b/predict") == "/v1/models/a/b/predict"


def test_patterns_with_literal_parts_in_a_segment() -> None:
    assert route_template("/files/report.json", ["/files/{name}.json"]) == "/files/{name}.json"
    assert route_template("/files/report.csv", ["/files/{name}.json"]) == "/files/report.csv"


def test_cache_is_bounded_and_consistent() -> None:
    templater = RouteTemplater(cache_size=8)
    for index in range(100):
        assert templater(f"/users/{index}") == "/users/{id}"
    info = templater.template.cache_info()  # type: ignore[attr-defined]
    assert info.currsize <= 8
    assert templater("/users/1") == "/users/{id}"


@pytest.mark.parametrize("segment", ["", "v1", "predict", "models", "gpt-4o", "bert-base-uncased"])
def test_names_are_not_ids(segment: str) -> None:
    assert not collapse_segment(segment)
