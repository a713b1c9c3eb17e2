"""Redaction, feature extraction and prediction parsing on the payload shapes model APIs use."""

from __future__ import annotations

import json

import pytest

from modelmonitor.quality.extract import extract_predictions, extract_rows, mapped_rows
from modelmonitor.quality.llm import detect_language, extract_llm
from modelmonitor.quality.redact import Pattern, Redactor, luhn_valid

SECRETS = {
    "email": "jane.doe+ml@example.co.uk",
    "card": "4111 1111 1111 1111",
    "card_dashed": "5500-0000-0000-0004",
    "phone": "+44 20 7946 0958",
    "openai": "sk-proj-Abcdefghijklmnop1234567890",
    "github": "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
    "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "bearer": "Bearer abc123def456ghi789",
}


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")


@pytest.mark.parametrize("name", SECRETS)
def test_builtin_patterns_scrub_text(name: str) -> None:
    secret = SECRETS[name]
    out = Redactor().text(f"contact: {secret} thanks")
    assert secret not in out
    assert "contact:" in out and "thanks" in out


def test_not_everything_is_a_secret() -> None:
    redactor = Redactor()
    # A 16-digit number that fails the Luhn check is no card; short numbers are no phones.
    text = "order 4111111111111112 of 12 items at 3.5"
    assert redactor.text(text) == text
    assert redactor.value({"age": 42, "income": 51234.5}) == {"age": 42, "income": 51234.5}


def test_json_values_keys_numbers_and_field_lists() -> None:
    redactor = Redactor(custom=[r"ACME-\d{4}"], deny_fields=["password", "*.ssn"], allow_fields=[])
    body = {
        "user": {"email": SECRETS["email"], "ssn": "123-45-6789", "id": "ACME-1234"},
        "password": "hunter2",
        "card": 4111111111111111,
        "rows": [{"note": f"call {SECRETS['phone']}"}],
    }
    text, parsed = redactor.body(json.dumps(body).encode())
    for secret in (
        SECRETS["email"],
        "123-45-6789",
        "ACME-1234",
        "hunter2",
        "4111111111111111",
        "7946",
    ):
        assert secret not in text
    assert parsed["user"]["ssn"] == "[redacted]" and parsed["password"] == "[redacted]"
    assert parsed["card"] == "[card]"


def test_allow_list_keeps_only_named_fields() -> None:
    redactor = Redactor(allow_fields=["features.*", "id"])
    _, parsed = redactor.body(b'{"id": 1, "features": {"a": 1, "b": 2}, "name": "x"}')
    assert parsed == {"id": 1, "features": {"a": 1, "b": 2}}


def test_only_chosen_patterns_apply() -> None:
    redactor = Redactor(patterns=[Pattern.EMAIL])
    assert redactor.text(f"{SECRETS['email']} {SECRETS['card']}") == f"[email] {SECRETS['card']}"


def test_non_json_bodies_are_scrubbed_as_text() -> None:
    text, parsed = Redactor().body(f"name={SECRETS['email']}&x=1".encode())
    assert parsed is None and SECRETS["email"] not in text


ROWS = [
    {"sepal_length": 5.1, "species_hint": "setosa"},
    {"sepal_length": 6.2, "species_hint": "virginica"},
]


@pytest.mark.parametrize(
    "body",
    [
        {
            "dataframe_split": {
                "columns": ["sepal_length", "species_hint"],
                "data": [[5.1, "setosa"], [6.2, "virginica"]],
            }
        },
        {"dataframe_records": ROWS},
        {"instances": ROWS},
        {"inputs": {"sepal_length": [5.1, 6.2], "species_hint": ["setosa", "virginica"]}},
        ROWS,
    ],
    ids=["dataframe_split", "dataframe_records", "instances", "inputs-columns", "array"],
)
def test_mlflow_and_plain_shapes(body: object) -> None:
    assert extract_rows(body) == ROWS


def test_plain_object_and_positional_instances() -> None:
    assert extract_rows({"a": 1, "b": {"c": True}, "skip": [1, 2]}) == [{"a": 1.0, "b.c": "true"}]
    assert extract_rows({"instances": [[1, 2], [3, 4]]}) == [
        {"0": 1.0, "1": 2.0},
        {"0": 3.0, "1": 4.0},
    ]


def test_kserve_v2_tensors() -> None:
    body = {
        "inputs": [
            {"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6]},
            {"name": "city", "shape": [2], "datatype": "BYTES", "data": ["paris", "rome"]},
        ]
    }
    assert extract_rows(body) == [
        {"x.0": 1.0, "x.1": 2.0, "x.2": 3.0, "city": "paris"},
        {"x.0": 4.0, "x.1": 5.0, "x.2": 6.0, "city": "rome"},
    ]


def test_mapping_by_json_path() -> None:
    body = {"payload": {"items": [{"f": {"age": 30}, "tier": "gold"}, {"f": {"age": 41}}]}}
    rows = mapped_rows(body, {"$.payload.items[*].f.age": "age", "payload.items[*].tier": "tier"})
    assert rows == [{"age": 30.0, "tier": "gold"}, {"age": 41.0, "tier": None}]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"predictions": [0, 2]}, [{"prediction": "0"}, {"prediction": "2"}]),
        ([1.25, 2.5], [{"prediction": 1.25}, {"prediction": 2.5}]),
        ({"predictions": ["setosa"]}, [{"prediction": "setosa"}]),
        (
            {"predictions": [[0.1, 0.9]]},
            [{"proba.0": 0.1, "proba.1": 0.9, "prediction": "1"}],
        ),
        (
            {"predictions": [{"label": "cat", "probabilities": [0.7, 0.3]}]},
            [{"prediction": "cat", "proba.0": 0.7, "proba.1": 0.3}],
        ),
        (
            {
                "outputs": [
                    {"name": "p", "shape": [2, 2], "datatype": "FP32", "data": [0.2, 0.8, 0.6, 0.4]}
                ]
            },
            [
                {"proba.0": 0.2, "proba.1": 0.8, "prediction": "1"},
                {"proba.0": 0.6, "proba.1": 0.4, "prediction": "0"},
            ],
        ),
        (
            {"outputs": [{"name": "y", "shape": [1], "datatype": "FP32", "data": [3.75]}]},
            [{"prediction": 3.75}],
        ),
    ],
)
def test_predictions(body: object, expected: list[dict[str, object]]) -> None:
    assert extract_predictions(body) == expected


def test_prediction_kind_override() -> None:
    assert extract_predictions({"predictions": [3]}, kind="value") == [{"prediction": 3.0}]
    assert extract_predictions({"predictions": [3.5]}, kind="label") == [{"prediction": "3.5"}]


def test_llm_exchange() -> None:
    request = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "What is the capital of France and how big is it?"}
        ],
    }
    refused = {
        "choices": [
            {"message": {"content": "I'm sorry, I cannot help with that."}, "finish_reason": "stop"}
        ]
    }
    features, outputs = extract_llm(request, refused)  # type: ignore[misc]
    assert features["prompt_language"] == "en" and features["prompt_chars"] == 48.0
    assert outputs["refusal"] == "true" and outputs["empty_answer"] == "false"
    assert outputs["finish_reason"] == "stop"
    _, empty = extract_llm(
        request, {"choices": [{"message": {"content": ""}, "finish_reason": "length"}]}
    )  # type: ignore[misc]
    assert empty["empty_answer"] == "true" and empty["completion_chars"] == 0.0
    assert extract_rows(request) == []
    assert extract_llm({"a": 1}, {"predictions": [1]}) is None


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("Der Hund ist nicht müde und das ist gut", "de"),
        ("Le chat est sur la table et je suis content", "fr"),
        ("这是一个关于机器学习模型的问题", "zh"),
        ("12345", "unknown"),
    ],
)
def test_language(text: str, tag: str) -> None:
    assert detect_language(text) == tag
