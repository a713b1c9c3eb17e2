"""Settings of model-aware monitoring: protocols, consumers, prices, cardinality caps.

Kept apart from :mod:`modelmonitor.settings` (which embeds these models) so the
protocol code can use them without importing every other setting.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "ConsumerConfig",
    "ModelPrice",
    "ProtocolName",
]


class ProtocolName(StrEnum):
    """What a service speaks. ``auto`` recognises every known protocol by its paths."""

    AUTO = "auto"
    OPENAI = "openai"
    MLFLOW = "mlflow"
    KSERVE_V1 = "kserve-v1"
    KSERVE_V2 = "kserve-v2"
    TRITON = "triton"
    TORCHSERVE = "torchserve"
    TF_SERVING = "tf-serving"
    BENTOML = "bentoml"
    REST = "rest"
    NONE = "none"


class ModelPrice(BaseModel):
    """US dollars per million tokens."""

    model_config = ConfigDict(extra="forbid")

    input: float = Field(ge=0)
    output: float = Field(default=0.0, ge=0)


class ConsumerConfig(BaseModel):
    """Who calls a service: a header's value, or a keyed hash of the API key."""

    model_config = ConfigDict(extra="forbid")

    #: Headers naming the caller, first present wins (e.g. ``X-User``,
    #: ``OpenAI-Organization``, a tenant header). Their values are recorded as sent.
    headers: list[str] = Field(default_factory=lambda: ["X-User", "OpenAI-Organization"])
    #: Identify callers by their API key (``Authorization``, ``api-key``, ``x-api-key``),
    #: recorded only as ``key:`` and a short keyed hash, never the key.
    api_keys: bool = True
    #: Names for hashed keys: ``{"key:3f9a0c1b2d4e": "search-team"}``.
    labels: dict[str, str] = Field(default_factory=dict)
    #: Peers whose ``X-Forwarded-For``/``Forwarded`` are believed for the client IP
    #: (addresses or CIDR networks, e.g. a load balancer).
    trusted_proxies: list[str] = Field(default_factory=list)

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: list[str]) -> list[str]:
        for name in value:
            if not name or any(c in name for c in " :\r\n"):
                raise ValueError(f"{name!r} is not a header name")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for text in value:
            try:
                ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise ValueError(f"{text!r} is not an IP address or network") from None
        return value
