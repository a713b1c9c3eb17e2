"""Which model API a request speaks, from its path alone: protocol, route, model, task.

Each protocol is a short list of path rules (a regex with ``model``/``version``
groups and the route template it stands for). A service recognises every protocol
(``auto``) or only the one it is configured with; results are cached per path, so
the hot path pays one dictionary lookup.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

import msgspec

from modelmonitor.events import RequestEvent
from modelmonitor.protocols.config import ProtocolName

__all__ = ["Call", "Recogniser", "Rule", "rules_for"]


class Call(msgspec.Struct, frozen=True, gc=False):
    """What a recognised request is: shared by every request to the same path.

    It is itself a body hook that reads no body: ``finish`` names the protocol, task,
    model and version the path carries (a model header or JSON field wins)."""

    protocol: str
    route: str
    task: str
    model: str = ""
    version: str = ""
    #: An OpenAI-compatible language-model call: tokens, TTFT and cost are read
    #: from its bodies.
    llm: bool = False
    #: The response names the model version (KServe V2 ``model_version``).
    version_in_response: bool = False

    def request_body(self, chunk: bytes) -> None:
        pass

    def response_body(self, chunk: bytes) -> None:
        pass

    def finish(self, event: RequestEvent) -> RequestEvent:
        return msgspec.structs.replace(
            event,
            model=event.model or self.model,
            model_version=event.model_version or self.version,
            protocol=self.protocol,
            task=self.task,
        )


class Rule(msgspec.Struct, frozen=True):
    protocol: ProtocolName
    pattern: str
    route: str
    task: str
    llm: bool = False
    version_in_response: bool = False


def _p(protocol: ProtocolName, pattern: str, route: str, task: str, **flags: bool) -> Rule:
    return Rule(protocol, pattern, route, task, **flags)


_OPENAI = ProtocolName.OPENAI
_V1 = ProtocolName.KSERVE_V1
_V2 = ProtocolName.KSERVE_V2
_NAME = r"[^/:]+"

#: Every rule, most specific first. ``{task}`` in a route is the matched verb.
_RULES: tuple[Rule, ...] = (
    # OpenAI-compatible (vLLM, TGI, llama.cpp, Ollama, LiteLLM, OpenAI); Azure deployments.
    _p(_OPENAI, r"(?:/v1)?/chat/completions", "/v1/chat/completions", "chat", llm=True),
    _p(_OPENAI, r"(?:/v1)?/completions", "/v1/completions", "completion", llm=True),
    _p(_OPENAI, r"(?:/v1)?/embeddings", "/v1/embeddings", "embedding", llm=True),
    _p(_OPENAI, r"(?:/v1)?/responses", "/v1/responses", "response", llm=True),
    _p(
        _OPENAI,
        rf"/openai/deployments/(?P<model>{_NAME})/(?P<verb>chat/completions|completions|embeddings)",
        "/openai/deployments/{model}/{verb}",
        "{verb}",
        llm=True,
    ),
    # MLflow scoring server.
    _p(ProtocolName.MLFLOW, r"/invocations", "/invocations", "predict"),
    # TF Serving: versions, labels, classify and regress are its own.
    _p(
        ProtocolName.TF_SERVING,
        rf"/v1/models/(?P<model>{_NAME})/versions/(?P<version>{_NAME}):(?P<verb>predict|classify|regress)",
        "/v1/models/{model}/versions/{version}:{verb}",
        "{verb}",
    ),
    _p(
        ProtocolName.TF_SERVING,
        rf"/v1/models/(?P<model>{_NAME})/labels/{_NAME}:(?P<verb>predict|classify|regress)",
        "/v1/models/{model}/labels/{label}:{verb}",
        "{verb}",
    ),
    _p(
        ProtocolName.TF_SERVING,
        rf"/v1/models/(?P<model>{_NAME}):(?P<verb>classify|regress)",
        "/v1/models/{model}:{verb}",
        "{verb}",
    ),
    # KServe V1 (TF Serving's plain :predict has the same shape and is named kserve-v1).
    _p(
        _V1,
        rf"/v1/models/(?P<model>{_NAME}):(?P<verb>predict|explain)",
        "/v1/models/{model}:{verb}",
        "{verb}",
    ),
    # KServe V2 / Open Inference Protocol (Triton, MLServer, KServe runtimes).
    _p(
        _V2,
        r"/v2/models/(?P<model>[^/]+)/versions/(?P<version>[^/]+)/(?P<verb>infer|generate|generate_stream)",
        "/v2/models/{model}/versions/{version}/{verb}",
        "{verb}",
        version_in_response=True,
    ),
    _p(
        _V2,
        r"/v2/models/(?P<model>[^/]+)/(?P<verb>infer|generate|generate_stream)",
        "/v2/models/{model}/{verb}",
        "{verb}",
        version_in_response=True,
    ),
    # TorchServe inference API.
    _p(
        ProtocolName.TORCHSERVE,
        r"/(?P<verb>predictions|explanations)/(?P<model>[^/]+)/(?P<version>[^/]+)",
        "/{verb}/{model}/{version}",
        "{verb}",
    ),
    _p(
        ProtocolName.TORCHSERVE,
        r"/(?P<verb>predictions|explanations)/(?P<model>[^/]+)",
        "/{verb}/{model}",
        "{verb}",
    ),
    # A plain prediction endpoint (BentoML's default API name, Flask/FastAPI apps).
    _p(ProtocolName.REST, r"/(?P<verb>predict)", "/predict", "predict"),
)
#: BentoML serves each API at ``/{api_name}``; only used when configured.
_BENTOML = (_p(ProtocolName.BENTOML, r"/(?P<verb>[A-Za-z_][A-Za-z0-9_]*)", "/{verb}", "{verb}"),)
_TASKS = {"predictions": "predict", "explanations": "explain", "chat/completions": "chat"}
_TASKS |= {"completions": "completion", "embeddings": "embedding", "generate_stream": "generate"}
_ALIASES = {ProtocolName.TRITON: ProtocolName.KSERVE_V2}


def rules_for(protocol: ProtocolName) -> tuple[Rule, ...]:
    """The rules a service configured with ``protocol`` applies."""
    if protocol is ProtocolName.AUTO:
        return _RULES
    if protocol is ProtocolName.NONE:
        return ()
    if protocol is ProtocolName.BENTOML:
        return _BENTOML
    wanted = _ALIASES.get(protocol, protocol)
    if wanted is _V1:  # TF Serving's plain :predict looks the same: accept both
        return tuple(r for r in _RULES if r.protocol in (_V1, ProtocolName.TF_SERVING))
    return tuple(r for r in _RULES if r.protocol is wanted)


class Recogniser:
    """``path -> Call | None`` for one service, cached and bounded."""

    __slots__ = ("_label", "_rules", "recognise")

    def __init__(self, protocol: ProtocolName, *, cache_size: int = 4096) -> None:
        self._label = "" if protocol in (ProtocolName.AUTO, ProtocolName.NONE) else protocol.value
        self._rules = [(re.compile(rule.pattern + "/?"), rule) for rule in rules_for(protocol)]
        #: The cached lookup (use this on the hot path).
        self.recognise: Callable[[str], Call | None] = lru_cache(maxsize=cache_size)(
            self._recognise
        )

    @property
    def active(self) -> bool:
        return bool(self._rules)

    def route(self, path: str) -> str | None:
        """The protocol's route template for ``path`` (for the route templater)."""
        call = self.recognise(path)
        return call.route if call is not None else None

    def _recognise(self, path: str) -> Call | None:
        for regex, rule in self._rules:
            match = regex.fullmatch(path)
            if match is None:
                continue
            groups = match.groupdict()
            verb = groups.get("verb") or ""
            task = rule.task.replace("{verb}", _TASKS.get(verb, verb))
            return Call(
                protocol=self._label or rule.protocol.value,
                route=rule.route.replace("{verb}", verb),
                task=task,
                model=groups.get("model") or "",
                version=groups.get("version") or "",
                llm=rule.llm,
                version_in_response=rule.version_in_response,
            )
        return None
