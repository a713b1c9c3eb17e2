"""Per-service settings for payload sampling and drift (part of ``ServiceConfig``)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from modelmonitor.timeparse import parse_duration

__all__ = ["DriftConfig", "SamplingConfig"]

_PATTERNS = ("email", "card", "phone", "token")
_METHODS = ("psi", "jensenshannon", "ks", "wasserstein", "chisquare")


def _duration(value: Any) -> float:
    if isinstance(value, str | int | float):
        return parse_duration(value)
    raise ValueError("expected a duration such as 30s, 15m, 1h or 7d")


_Duration = Annotated[float, BeforeValidator(_duration), Field(ge=0)]


class SamplingConfig(BaseModel):
    """Opt-in payload sampling: nothing is copied unless ``rate`` is above 0."""

    model_config = ConfigDict(extra="forbid")

    #: Share of requests whose bodies are copied (0 to 1).
    rate: float = Field(default=0.0, ge=0.0, le=1.0)
    #: At most this many bytes of each body are copied; the rest is not looked at.
    max_body_bytes: int = Field(default=16 * 1024, ge=64, le=1024 * 1024)
    #: JSON fields kept (dotted paths or names, ``*`` wildcards); empty keeps all.
    allow_fields: list[str] = Field(default_factory=list)
    #: JSON fields replaced by ``[redacted]`` and never profiled.
    deny_fields: list[str] = Field(default_factory=list)
    #: Built-in redaction patterns: email, card (Luhn-checked), phone, token.
    redact: list[Literal["email", "card", "phone", "token"]] = Field(
        default_factory=lambda: list(_PATTERNS)  # type: ignore[arg-type]
    )
    #: The user's own regular expressions, replaced by ``[redacted]``.
    redact_patterns: list[str] = Field(default_factory=list)
    #: JSON path -> feature name, for request shapes the built-in readers do not know.
    features: dict[str, str] = Field(default_factory=dict)
    #: How a whole-number prediction is read: ``auto`` (a label), ``label`` or ``value``.
    prediction: Literal["auto", "label", "value"] = "auto"
    #: How long sampled bodies are kept.
    retention: _Duration = parse_duration("7d")

    @field_validator("redact_patterns")
    @classmethod
    def _compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"redact pattern {pattern!r} is not a regular expression: {exc}"
                ) from None
        return patterns

    @property
    def enabled(self) -> bool:
        return self.rate > 0.0


class DriftConfig(BaseModel):
    """How drift is judged for a service."""

    model_config = ConfigDict(extra="forbid")

    #: The current window each drift figure covers.
    window: _Duration = Field(default=parse_duration("1h"), gt=0)
    #: Reference used when none is named: a stored one (uploaded file or pinned range).
    reference: str | None = None
    #: Without a stored reference: the first hours after a model version first appears.
    reference_hours: float = Field(default=24.0, gt=0)
    #: Fixed method per feature (else Evidently's default choice).
    methods: dict[str, Literal["psi", "jensenshannon", "ks", "wasserstein", "chisquare"]] = Field(
        default_factory=dict
    )
    #: Thresholds per method (p-value methods drift below theirs).
    thresholds: dict[Literal["psi", "jensenshannon", "ks", "wasserstein", "chisquare"], float] = (
        Field(default_factory=dict)
    )
    #: The service drifts when at least this share of its features do.
    drift_share: float = Field(default=0.5, gt=0.0, le=1.0)
