"""What a language-model exchange says about its data: lengths, language, refusals."""

from __future__ import annotations

import re
from typing import Any

from modelmonitor.quality.profile import Scalar

__all__ = ["detect_language", "extract_llm", "is_refusal"]

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_STOPWORDS = {
    "en": {"the", "and", "is", "of", "to", "in", "you", "that", "it", "for", "what", "how"},
    "de": {"der", "die", "und", "ist", "nicht", "ich", "das", "zu", "mit", "ein", "wie"},
    "fr": {"le", "la", "et", "est", "les", "des", "une", "pas", "je", "que", "vous"},
    "es": {"el", "la", "y", "es", "los", "las", "una", "que", "por", "como", "para"},
}
_SCRIPTS = (
    ("zh", re.compile(r"[\u4e00-\u9fff]")),
    ("ja", re.compile(r"[\u3040-\u30ff]")),
    ("ko", re.compile(r"[\uac00-\ud7af]")),
    ("ru", re.compile(r"[\u0400-\u04ff]")),
    ("ar", re.compile(r"[\u0600-\u06ff]")),
)
_REFUSAL = re.compile(
    r"\b(?:I(?:'m| am) (?:sorry|unable|not able)|I can(?:not|'t) (?:help|assist|comply|provide)"
    r"|as an AI(?: language model)?|I must decline|I won't be able to)\b",
    re.IGNORECASE,
)


def detect_language(text: str) -> str:
    """A coarse language tag from the script and common words; ``"unknown"`` when unsure."""
    sample = text[:2000]
    for tag, script in _SCRIPTS:
        if len(script.findall(sample)) >= max(3, len(sample) // 10):
            return tag
    words = [w.lower() for w in _WORD.findall(sample)]
    if not words:
        return "unknown"
    hits = {tag: sum(w in stop for w in words) for tag, stop in _STOPWORDS.items()}
    best = max(hits, key=hits.__getitem__)
    return best if hits[best] >= 2 else "unknown"


def is_refusal(text: str) -> bool:
    return bool(_REFUSAL.search(text[:500]))


def _content(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content parts: [{"type": "text", "text": ...}]
        return " ".join(p.get("text", "") for p in value if isinstance(p, dict))
    return ""


def _prompt_text(request: Any) -> str | None:
    if not isinstance(request, dict):
        return None
    messages = request.get("messages")
    if isinstance(messages, list):
        return "\n".join(_content(m.get("content")) for m in messages if isinstance(m, dict))
    for key in ("prompt", "input"):
        if isinstance(request.get(key), str):
            return str(request[key])
    return None


def _completion_text(response: Any) -> tuple[str, str] | None:
    if not isinstance(response, dict) or not isinstance(response.get("choices"), list):
        return None
    texts, reasons = [], []
    for choice in response["choices"]:
        if not isinstance(choice, dict):
            continue
        message = choice.get("message")
        texts.append(
            _content(message.get("content"))
            if isinstance(message, dict)
            else str(choice.get("text") or "")
        )
        reasons.append(str(choice.get("finish_reason") or ""))
    return "\n".join(texts), reasons[0] if reasons else ""


def extract_llm(request: Any, response: Any) -> tuple[dict[str, Scalar], dict[str, Scalar]] | None:
    """``(features, outputs)`` of an OpenAI-style exchange, or None when it is not one."""
    prompt = _prompt_text(request)
    completion = _completion_text(response)
    if prompt is None and completion is None:
        return None
    features: dict[str, Scalar] = {}
    outputs: dict[str, Scalar] = {}
    if prompt is not None:
        features["prompt_chars"] = float(len(prompt))
        features["prompt_language"] = detect_language(prompt)
    if completion is not None:
        text, reason = completion
        outputs["completion_chars"] = float(len(text))
        outputs["completion_language"] = detect_language(text) if text.strip() else None
        outputs["refusal"] = "true" if is_refusal(text) else "false"
        outputs["empty_answer"] = "true" if not text.strip() else "false"
        if reason:
            outputs["finish_reason"] = reason
    return features, outputs
