"""Silences: label matchers and a time range during which notifications are held back.

An alert's labels are the rule's labels plus ``service``, ``rule`` (the rule's
name), ``rule_id``, ``severity`` and ``route`` (when the rule has one). A silence
matches an alert when every matcher matches; the alert still changes state and
is recorded in the history, only its notifications are not sent.
"""

from __future__ import annotations

import re
import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from modelmonitor.timeparse import parse_time

__all__ = ["Matcher", "Silence", "alert_labels"]


def _time(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        return parse_time(value, now=time.time())
    raise ValueError("expected a time: ISO-8601, Unix seconds, 'now' or a relative time")


Time = Annotated[float, BeforeValidator(_time)]


class Matcher(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    value: str
    #: ``=`` equal, ``!=`` not equal, ``=~`` regex (full match), ``!~`` regex does not match.
    op: Literal["=", "!=", "=~", "!~"] = "="

    @model_validator(mode="after")
    def _check_regex(self) -> Matcher:
        if self.op in ("=~", "!~"):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"value is not a regular expression: {exc}") from None
        return self

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found


class Silence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = ""
    matchers: list[Matcher] = Field(min_length=1)
    starts_at: Time
    ends_at: Time
    comment: str = Field(default="", max_length=1000)
    created_by: str = Field(default="", max_length=200)
    created_at: float = 0.0

    @model_validator(mode="after")
    def _check_range(self) -> Silence:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: dict[str, str]) -> bool:
        return all(matcher.matches(labels) for matcher in self.matchers)


def alert_labels(
    *,
    rule_id: str,
    rule_name: str,
    service: str,
    severity: str,
    route: str | None,
    labels: dict[str, str],
) -> dict[str, str]:
    combined = dict(labels)
    combined.update(service=service, rule=rule_name, rule_id=rule_id, severity=severity)
    if route is not None:
        combined["route"] = route
    return combined
