"""The body hooks a service starts per request, from its protocol settings."""

from __future__ import annotations

import re

import msgspec

from modelmonitor.events import RequestEvent
from modelmonitor.protocols.config import ProtocolName
from modelmonitor.protocols.llm import DEFAULT_BUDGET, LLMMeter
from modelmonitor.protocols.pricing import PriceTable
from modelmonitor.protocols.recognise import Call, Recogniser
from modelmonitor.proxy.inspect import BodyHook, Capped, HookFactory

__all__ = ["V2Meter", "protocol_hooks"]

_V2_HEAD = 4096
_V2_VERSION = re.compile(rb'"model_version"\s*:\s*"([^"]{1,100})"')
_V2_NAME = re.compile(rb'"model_name"\s*:\s*"([^"]{1,200})"')


class V2Meter:
    """KServe V2 / Triton: the answering model's name and version from the response head."""

    __slots__ = ("call", "head")

    def __init__(self, call: Call) -> None:
        self.call = call
        self.head = Capped(_V2_HEAD)

    def request_body(self, chunk: bytes) -> None:
        pass

    def response_body(self, chunk: bytes) -> None:
        if len(self.head.data) < _V2_HEAD:
            self.head.add(chunk)

    def finish(self, event: RequestEvent) -> RequestEvent:
        event = self.call.finish(event)
        head = bytes(self.head.data)
        version = _V2_VERSION.search(head)
        name = _V2_NAME.search(head)
        if version and not event.model_version:
            event = msgspec.structs.replace(event, model_version=version[1].decode())
        if name and not event.model:
            event = msgspec.structs.replace(event, model=name[1].decode())
        return event


def protocol_hooks(
    protocol: ProtocolName,
    *,
    prices: PriceTable,
    budget: int = DEFAULT_BUDGET,
    model: str = "",
    model_version: str = "",
) -> tuple[HookFactory | None, Recogniser]:
    """The hook factory for a service speaking ``protocol`` (``None`` when it has
    nothing to recognise), and its recogniser (for route templates).

    ``model``/``model_version`` name what a single-model server (MLflow, BentoML)
    serves, for requests that do not say."""
    recogniser = Recogniser(protocol)
    recognise = recogniser.recognise
    if not recogniser.active and not model:
        return None, recogniser
    fixed = Call(protocol="", route="", task="", model=model, version=model_version)

    def start(method: str, path: str, t0: float) -> BodyHook | None:
        call = recognise(path)
        if call is None:
            return fixed if model else None
        if model and not call.model:
            call = msgspec.structs.replace(call, model=model, version=call.version or model_version)
        if call.llm:
            return LLMMeter(call, prices, t0, budget)
        if call.version_in_response:
            return V2Meter(call)
        return call

    return start, recogniser
