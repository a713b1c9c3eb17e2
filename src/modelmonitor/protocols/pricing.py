"""What a language-model call cost: a per-model price table (US dollars per million tokens).

A bundled table covers common hosted models; the config's ``prices`` override or
extend it (self-hosted models cost nothing unless priced). A model matches its exact
name, else the longest priced name it starts with (``gpt-4o-2024-08-06`` is priced as
``gpt-4o``), also after a provider prefix (``openai/gpt-4o``).
"""

from __future__ import annotations

from collections.abc import Mapping

from modelmonitor.protocols.config import ModelPrice

__all__ = ["DEFAULT_PRICES", "DEFAULT_PRICES_AS_OF", "PriceTable"]

DEFAULT_PRICES_AS_OF = "2025-08"
#: Published list prices (input, output) per million tokens; check your contract.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-5": (1.25, 10.0),
    "gpt-5-mini": (0.25, 2.0),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-4.1": (2.0, 8.0),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.0),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4-turbo": (10.0, 30.0),
    "gpt-4": (30.0, 60.0),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o1": (15.0, 60.0),
    "o1-mini": (1.10, 4.40),
    "o3": (2.0, 8.0),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "text-embedding-3-small": (0.02, 0.0),
    "text-embedding-3-large": (0.13, 0.0),
    "text-embedding-ada-002": (0.10, 0.0),
    "claude-opus-4": (15.0, 75.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-3-7-sonnet": (3.0, 15.0),
    "claude-3-5-sonnet": (3.0, 15.0),
    "claude-3-5-haiku": (0.80, 4.0),
    "claude-3-opus": (15.0, 75.0),
    "claude-3-haiku": (0.25, 1.25),
    "gemini-2.0-flash": (0.10, 0.40),
    "gemini-1.5-pro": (1.25, 5.0),
    "gemini-1.5-flash": (0.075, 0.30),
    "mistral-large": (2.0, 6.0),
    "mistral-small": (0.20, 0.60),
}
_CACHE_LIMIT = 4096


class PriceTable:
    """``cost(model, prompt_tokens, completion_tokens)`` in US dollars."""

    __slots__ = ("_cache", "_names", "_prices")

    def __init__(
        self, overrides: Mapping[str, ModelPrice] | None = None, *, defaults: bool = True
    ) -> None:
        prices = dict(DEFAULT_PRICES) if defaults else {}
        for name, price in (overrides or {}).items():
            prices[name] = (price.input, price.output)
        self._prices = prices
        self._names = sorted(prices, key=len, reverse=True)
        self._cache: dict[str, tuple[float, float] | None] = {}

    def price(self, model: str) -> tuple[float, float] | None:
        """(input, output) per million tokens for ``model``, or ``None`` when unpriced."""
        try:
            return self._cache[model]
        except KeyError:
            pass
        found = self._lookup(model) or self._lookup(model.rpartition("/")[2])
        if len(self._cache) < _CACHE_LIMIT:
            self._cache[model] = found
        return found

    def _lookup(self, model: str) -> tuple[float, float] | None:
        exact = self._prices.get(model)
        if exact is not None:
            return exact
        for name in self._names:
            if model.startswith(name) and model[len(name) : len(name) + 1] in ("-", "@", ":"):
                return self._prices[name]
        return None

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        price = self.price(model) if model else None
        if price is None:
            return 0.0
        return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000
