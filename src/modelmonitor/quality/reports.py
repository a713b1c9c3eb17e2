"""Drift reports for a service: resolve the reference, merge windows, compare, track over time.

Service functions shared by the REST API, the CLI and the alert evaluators.
"""

from __future__ import annotations

import math
import time
import weakref

import msgspec

from modelmonitor.quality.config import DriftConfig
from modelmonitor.quality.drift import DriftReport, FeatureDrift, Method, compare_windows
from modelmonitor.quality.processor import BUCKET_SECONDS
from modelmonitor.quality.profile import WindowProfile, decode_profile, encode_profile
from modelmonitor.quality.reference import profile_rows, read_table
from modelmonitor.quality.store.base import QualityStore, Reference

__all__ = [
    "DriftPoint",
    "ReferenceNotFound",
    "ServiceDrift",
    "drift_history",
    "drift_report",
    "load_window",
    "pin_range",
    "resolve_reference",
    "upload_reference",
]


class ReferenceNotFound(LookupError):
    """No reference by that name, or no data in the reference's range."""


class ServiceDrift(msgspec.Struct, frozen=True):
    service: str
    reference: str
    reference_source: dict[str, str | float]
    start: float
    end: float
    report: DriftReport
    #: Start of the window where the current run of drifted windows began (None: no drift).
    drift_began_at: float | None = None


class DriftPoint(msgspec.Struct, frozen=True):
    start: float
    end: float
    drift_score: float
    drifted: bool
    features: dict[str, float]
    drifted_features: list[str]
    rows: int
    missing_rates: dict[str, float]
    prediction_shares: dict[str, float]


#: Closed reference ranges, merged once per store: ``(service, start, end) -> (until, profile)``.
_REFERENCES: weakref.WeakKeyDictionary[
    QualityStore, dict[tuple[str, float, float], tuple[float, WindowProfile]]
] = weakref.WeakKeyDictionary()
_REFERENCE_TTL = 300.0
_REFERENCE_SLOTS = 32


async def _closed_window(
    store: QualityStore, *, service: str, start: float, end: float, now: float
) -> WindowProfile:
    """A reference range's profile; cached for a while once the range lies in the past
    (read-only: callers never change a reference profile)."""
    if end > now:
        return await load_window(store, service=service, start=start, end=end)
    cache = _REFERENCES.setdefault(store, {})
    key = (service, start, end)
    cached = cache.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    window = await load_window(store, service=service, start=start, end=end)
    if len(cache) >= _REFERENCE_SLOTS:
        cache.pop(next(iter(cache)))
    cache[key] = (now + _REFERENCE_TTL, window)
    return window


async def load_window(
    store: QualityStore, *, service: str, start: float, end: float
) -> WindowProfile:
    """Every profile row of ``service`` whose bucket starts in ``[start, end)``, merged."""
    window = WindowProfile()
    for _, blob in await store.profiles(service, start, end):
        window.merge(decode_profile(blob))
    return window


async def upload_reference(
    store: QualityStore,
    *,
    service: str,
    name: str,
    data: bytes,
    filename: str = "",
    content_type: str = "",
    prediction_column: str | None = None,
    now: float | None = None,
) -> Reference:
    """Profile a CSV or Parquet training file and store it as a named reference."""
    profile = profile_rows(
        read_table(data, filename=filename, content_type=content_type),
        prediction_column=prediction_column,
    )
    reference = Reference(
        service=service,
        name=name,
        created_at=now if now is not None else time.time(),
        source={"kind": "file", "file": filename or "upload", "rows": float(profile.rows)},
        profile=encode_profile(profile),
    )
    await store.put_reference(reference)
    return reference


async def pin_range(
    store: QualityStore,
    *,
    service: str,
    name: str,
    start: float,
    end: float,
    now: float | None = None,
) -> Reference:
    """Freeze the profiles of ``[start, end)`` as a named reference."""
    window = await load_window(store, service=service, start=start, end=end)
    if window.empty:
        raise ReferenceNotFound(f"no sampled data for {service!r} between {start} and {end}")
    reference = Reference(
        service=service,
        name=name,
        created_at=now if now is not None else time.time(),
        source={"kind": "range", "start": start, "end": end},
        profile=encode_profile(window),
    )
    await store.put_reference(reference)
    return reference


async def resolve_reference(
    store: QualityStore,
    *,
    service: str,
    spec: str | None,
    config: DriftConfig,
    now: float,
) -> tuple[str, dict[str, str | float], WindowProfile]:
    """``spec``: a stored reference's name, ``START..END`` (a range), or None for the default.

    The default is the service's configured reference, else the first
    ``reference_hours`` after the service's first profiled bucket (its first version).
    """
    name = spec or config.reference
    if name and ".." in name:
        from modelmonitor.timeparse import parse_time

        low, _, high = name.partition("..")
        start, end = parse_time(low, now=now), parse_time(high or "now", now=now)
        window = await _closed_window(store, service=service, start=start, end=end, now=now)
        if window.empty:
            raise ReferenceNotFound(f"no sampled data for {service!r} in {name}")
        return name, {"kind": "range", "start": start, "end": end}, window
    if name:
        stored = await store.get_reference(service, name)
        if stored is None:
            raise ReferenceNotFound(f"no reference {name!r} for service {service!r}")
        return name, stored.source, decode_profile(stored.profile)
    first = await store.first_profile(service)
    if first is None:
        raise ReferenceNotFound(f"no sampled data for {service!r} yet")
    end = first + config.reference_hours * 3600.0
    window = await _closed_window(store, service=service, start=first, end=end, now=now)
    source: dict[str, str | float] = {"kind": "first_hours", "start": first, "end": end}
    return f"first {config.reference_hours:g}h", source, window


def _compare(reference: WindowProfile, current: WindowProfile, config: DriftConfig) -> DriftReport:
    return compare_windows(
        reference,
        current,
        methods={k: Method(v) for k, v in config.methods.items()},
        thresholds={Method(k): v for k, v in config.thresholds.items()},
        drift_share=config.drift_share,
    )


async def drift_report(
    store: QualityStore,
    *,
    service: str,
    reference: str | None,
    start: float,
    end: float,
    config: DriftConfig,
    now: float,
    reference_profile: WindowProfile | None = None,
    find_start: bool = True,
) -> ServiceDrift:
    """Drift of ``[start, end)`` against the reference, with when the drift began.

    ``reference_profile`` (a file profiled by the caller) wins over ``reference``.
    """
    if reference_profile is not None:
        name = reference or "file"
        source: dict[str, str | float] = {"kind": "file", "file": name}
        ref = reference_profile
    else:
        name, source, ref = await resolve_reference(
            store, service=service, spec=reference, config=config, now=now
        )
    current = await load_window(store, service=service, start=start, end=end)
    report = _compare(ref, current, config)
    began = None
    if find_start and any(f.drifted for f in report.features + report.outputs):
        began = await _drift_began(store, service=service, ref=ref, end=end, config=config)
    return ServiceDrift(service, name, source, start, end, report, began)


async def _drift_began(
    store: QualityStore,
    *,
    service: str,
    ref: WindowProfile,
    end: float,
    config: DriftConfig,
    limit: int = 48,
) -> float | None:
    """Walk back window by window while some feature drifts; the last such window's start."""
    began = None
    step = config.window
    for i in range(limit):
        w_end = end - i * step
        window = await load_window(store, service=service, start=w_end - step, end=w_end)
        if window.empty:
            break
        report = _compare(ref, window, config)
        if not any(f.drifted for f in report.features + report.outputs):
            break
        began = w_end - step
    return began


async def drift_history(
    store: QualityStore,
    *,
    service: str,
    reference: str | None,
    start: float,
    end: float,
    step: float,
    config: DriftConfig,
    now: float,
    max_points: int = 500,
) -> list[DriftPoint]:
    """One drift point per ``step`` window in ``[start, end)`` (windows with no data skipped)."""
    _, _, ref = await resolve_reference(
        store, service=service, spec=reference, config=config, now=now
    )
    step = max(step, BUCKET_SECONDS, (end - start) / max_points)
    points: list[DriftPoint] = []
    buckets: dict[float, WindowProfile] = {}
    for bucket, blob in await store.profiles(service, start, end):
        key = start + math.floor((bucket - start) / step) * step
        buckets.setdefault(key, WindowProfile()).merge(decode_profile(blob))
    for key in sorted(buckets):
        window = buckets[key]
        report = _compare(ref, window, config)
        everything = report.features + report.outputs
        prediction = window.outputs.get("prediction")
        shares: dict[str, float] = {}
        if prediction is not None and prediction.categorical_count:
            total = prediction.categorical_count
            shares = {k: v / total for k, v in prediction.categories.items()}
        points.append(
            DriftPoint(
                start=key,
                end=key + step,
                drift_score=report.drift_score,
                drifted=report.drifted,
                features={f.name: _js(f) for f in everything},
                drifted_features=[f.name for f in everything if f.drifted],
                rows=window.rows,
                missing_rates={f.name: f.missing_rate for f in report.features},
                prediction_shares=shares,
            )
        )
    return points


def _js(feature: FeatureDrift) -> float:
    js = feature.metrics.get(Method.JENSEN_SHANNON.value)
    return float(js.value) if js is not None else 0.0
