"""What the proxy needs to be model-aware, built once from the settings and shared by
every service: the price table, the key-hashing secret and the inspection budget."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

from modelmonitor.protocols.config import ConsumerConfig, ProtocolName
from modelmonitor.protocols.consumers import ConsumerIdentifier, load_secret
from modelmonitor.protocols.hooks import protocol_hooks
from modelmonitor.protocols.llm import DEFAULT_BUDGET
from modelmonitor.protocols.pricing import PriceTable
from modelmonitor.proxy.inspect import HookFactory

if TYPE_CHECKING:
    from modelmonitor.settings import Settings

__all__ = ["ModelAwareness", "ServiceModels", "model_awareness"]


class ServiceModels(msgspec.Struct, frozen=True):
    """One service's model-aware parts."""

    #: Starts the body hook of a request (``None``: nothing to recognise).
    hooks: HookFactory | None
    #: ``path -> route template`` for recognised protocol paths, else ``None``.
    route: Callable[[str], str | None]
    #: Names consumers from headers (``None``: consumers are not identified).
    consumers: ConsumerIdentifier | None


class ModelAwareness:
    """Builds :class:`ServiceModels` for each service from shared settings."""

    def __init__(
        self,
        *,
        prices: PriceTable | None = None,
        secret: bytes | None = None,
        budget: int = DEFAULT_BUDGET,
    ) -> None:
        self.prices = prices or PriceTable()
        #: Without a configured secret, hashes are stable for this process only.
        self.secret = secret or os.urandom(32)
        self.budget = budget

    def for_service(
        self,
        *,
        protocol: ProtocolName,
        consumers: ConsumerConfig | None,
        model: str = "",
        model_version: str = "",
    ) -> ServiceModels:
        hooks, recogniser = protocol_hooks(
            protocol,
            prices=self.prices,
            budget=self.budget,
            model=model,
            model_version=model_version,
        )
        identifier = None
        if consumers is not None and (
            consumers.headers or consumers.api_keys or consumers.trusted_proxies
        ):
            identifier = ConsumerIdentifier(consumers, secret=self.secret)
        return ServiceModels(hooks=hooks, route=recogniser.route, consumers=identifier)


def model_awareness(settings: Settings) -> ModelAwareness:
    """The shared model-aware parts the settings describe (reads or makes the secret)."""
    given = settings.consumer_secret.get_secret_value() if settings.consumer_secret else None
    return ModelAwareness(
        prices=PriceTable(settings.prices, defaults=settings.default_prices),
        secret=load_secret(settings.data_dir, given),
        budget=settings.llm_inspect_bytes,
    )
