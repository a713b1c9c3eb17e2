"""Model quality without code changes: payload sampling, redaction, profiles and drift."""

__all__: list[str] = []
