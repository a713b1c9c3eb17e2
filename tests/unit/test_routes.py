"""Route templates keep metric cardinality bounded and honour user patterns."""

from __future__ import annotations

import pytest

from modelmonitor.proxy.routes import (
    OTHER,
    REDACTED,
    RouteTemplater,
    Segment,
    classify_segment,
    collapse_segment,
    route_template,
)


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
        ("/users/alice@example.com/keys", "/users/{id}/keys"),
        ("/users/bob%40example.org", "/users/{id}"),
        ("/keys/sk-ABCDEF1234567890abcdef", "/keys/{id}"),
        ("/keys/sk-proj-Xy7Qm2Lp9Rt4Vb1N", "/keys/{id}"),
        ("/k/ghp_16C7e42F292c6912E7710c838347Ae178B4a", "/k/{id}"),
        ("/k/pk_live_51HqLyjWDarjtT1zdp7dc", "/k/{id}"),
        ("/s/AbCdEfGhIjKlMnOpQrSt", "/s/{id}"),
        ("/r/a1b2c3d4e5f6g7h8i9", "/r/{id}"),
        ("/commit/3f9a8b7c", "/commit/{id}"),
        (
            "/jwt/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N",
            "/jwt/{id}",
        ),
        ("/v1/models/Qwen2.5-72B-Instruct/generate", "/v1/models/Qwen2.5-72B-Instruct/generate"),
        ("/v1/models/mistral-7b-instruct-v0.2", "/v1/models/mistral-7b-instruct-v0.2"),
        ("/v1/chat/completions", "/v1/chat/completions"),
        ("/v1/text-embedding-3-large", "/v1/text-embedding-3-large"),
        ("/api/secret-manager-config", "/api/secret-manager-config"),
        ("/v1/key_value_store", "/v1/key_value_store"),
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
    info = templater.describe.cache_info()  # type: ignore[attr-defined]
    assert info.currsize <= 8
    assert templater("/users/1") == "/users/{id}"


@pytest.mark.parametrize(
    "segment",
    [
        "",
        "v1",
        "predict",
        "models",
        "gpt-4o",
        "bert-base-uncased",
        "deadbeef",
        "ViTForImageClassification",
    ],
)
def test_names_are_not_ids(segment: str) -> None:
    assert not collapse_segment(segment)


def test_emails_and_keys_are_masked_in_the_recorded_path_numbers_are_kept() -> None:
    templater = RouteTemplater()
    route, path = templater.describe("/users/alice@example.com/keys/sk-ABCDEF1234567890abcdef/42")
    assert route == "/users/{id}/keys/{id}/{id}"
    assert path == f"/users/{REDACTED}/keys/{REDACTED}/42"
    uuid = "550e8400-e29b-41d4-a716-446655440000"
    assert templater.describe(f"/a/{uuid}") == ("/a/{id}", f"/a/{uuid}")
    assert classify_segment("alice@example.com") is Segment.OPAQUE
    assert classify_segment("2024-01-01") is Segment.NUMBER


def test_distinct_routes_are_capped_into_other() -> None:
    templater = RouteTemplater(["/v1/models/{model}/predict"], cache_size=16, max_routes=10)
    routes = {templater(f"/r/{word}") for word in (f"name{chr(97 + i)}" for i in range(26))}
    assert len(routes - {OTHER}) == 10
    assert OTHER in routes
    assert templater.routes == 10
    # Routes seen before the cap keep their name; user patterns are never capped.
    assert templater("/r/namea") == "/r/namea"
    assert templater("/v1/models/iris/predict") == "/v1/models/{model}/predict"
    # Long paths skip the cache but not the cap.
    assert templater("/long/" + "word/" * 100) == OTHER
    assert templater.describe.cache_info().currsize <= 16  # type: ignore[attr-defined]
