"""One :class:`Aggregate`: what every view counts about a set of requests.

Live windows (memory and Redis), per-minute rollups and history all hold
``Aggregate``s: :meth:`~Aggregate.add` one event, :func:`aggregate_batch` a whole
batch at once (vectorised: the batch is grouped by series, then every measure is
summed and every sketch filled per group with one NumPy pass), :meth:`~Aggregate.merge`
two, :meth:`~Aggregate.to_stats` for a window, :meth:`~Aggregate.to_columns` /
:meth:`~Aggregate.from_columns` for stored rows and :meth:`~Aggregate.to_fields` /
:meth:`~Aggregate.from_fields` for Redis hashes.

Every measure is declared once, in :data:`MEASURES`. Adding a measure is one line
there (its storage, merging and wire forms follow); grouping by more dimensions
(model, consumer) is a different ``dims`` for :func:`aggregate_batch`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from itertools import count as positions
from operator import attrgetter
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from modelmonitor.events import RequestEvent, is_error, status_class
from modelmonitor.sketch import MIN_VALUE, LatencySketch

__all__ = [
    "EVENT_FIELDS",
    "MEASURES",
    "ROW_COLUMNS",
    "Aggregate",
    "Columns",
    "Kind",
    "LabelCodes",
    "LanguageStats",
    "Measure",
    "WindowStats",
    "aggregate_batch",
    "finished_second",
    "floor_seconds",
]

EVENT_FIELDS: tuple[str, ...] = RequestEvent.__struct_fields__


class Kind(enum.Enum):
    """How a measure accumulates."""

    COUNT = "count"  #: integer sum of a field (bytes, tokens)
    SUM = "sum"  #: float sum of a field (cost)
    FLAG = "flag"  #: how many events have the flag (errors, streamed)
    LABELS = "labels"  #: counts per label (status class, finish reason); "" is not counted
    SKETCH = "sketch"  #: a quantile sketch of a duration (latency, time to first token)


Column = npt.NDArray[Any]


class Columns:
    """A batch in columnar form: each event field as a list or an array, built on first use."""

    __slots__ = ("_arrays", "_raw", "events")

    def __init__(self, events: Sequence[RequestEvent]) -> None:
        self.events = events
        self._raw: dict[str, list[Any]] = {}
        self._arrays: dict[str, Column] = {}

    def raw(self, name: str) -> list[Any]:
        """The field's values as a list (no NumPy conversion)."""
        values = self._raw.get(name)
        if values is None:
            values = self._raw[name] = list(map(attrgetter(name), self.events))
        return values

    def __getitem__(self, name: str) -> Column:
        """A numeric field as a float64 array."""
        array = self._arrays.get(name)
        if array is None:
            array = self._arrays[name] = np.array(self.raw(name), dtype=np.float64)
        return array

    def any(self, name: str) -> bool:
        """Whether any event has a non-zero, non-empty value (a C-speed scan)."""
        return any(self.raw(name))

    def any_of(self, names: Sequence[str]) -> bool:
        """Whether any event has any of these fields set, in one pass."""
        if not names:
            return False
        getter = attrgetter(*names)
        if len(names) == 1:
            return any(map(getter, self.events))
        return any(chain.from_iterable(map(getter, self.events)))

    def __len__(self) -> int:
        return len(self.events)


#: Label codes of a batch: one small integer per event, and the label of each code.
LabelCodes = tuple[Column, list[str]]
_STATUS_LABELS = ["err", "1xx", "2xx", "3xx", "4xx", "5xx"]


def _status_classes(columns: Columns) -> LabelCodes:
    status = columns["status"]
    known = (status >= 100) & (status < 600)  # the rule of events.status_class
    return np.where(known, status // 100, 0).astype(np.intp), _STATUS_LABELS


def _labels_of(values: list[str]) -> LabelCodes | None:
    if not any(values):
        return None
    labels: dict[str, int] = {}
    codes = np.fromiter(map(labels.setdefault, values, positions()), np.intp, len(values))
    compact = np.unique(codes, return_inverse=True)[1]
    names = list(labels)  # insertion order is first-position order, the order of unique
    return compact.astype(np.intp), names


def _errors(columns: Columns) -> Column:
    failed: Column = columns["status"] >= 500  # the rule of events.is_error
    if columns.any("error"):
        failed |= np.fromiter(map(bool, columns.raw("error")), bool, len(columns))
    return failed


@dataclass(frozen=True, slots=True)
class Measure:
    """One thing an :class:`Aggregate` counts, declared once.

    ``one`` reads it from an event, ``many`` from a batch's :class:`Columns` (an
    array, :data:`LabelCodes` for labels, or None when the whole batch has none).
    ``short`` names it in Redis hashes; ``column`` names its own database column
    (the measures that existed before this table); the others travel together in
    the rollups' ``measures`` blob. For sketches, ``keep_zero`` counts zero values
    (a latency) instead of skipping them (a time to first token not measured).
    """

    name: str
    kind: Kind
    short: str
    one: Callable[[RequestEvent], Any]
    many: Callable[[Columns], Any]
    column: str | None = None
    keep_zero: bool = False
    #: The event field an optional measure reads: most batches carry none of these
    #: (language-model fields on other traffic), and one pass over them all skips
    #: their columns.
    optional: str | None = None


def _field(name: str) -> tuple[Callable[[RequestEvent], Any], Callable[[Columns], Any]]:
    """Read an event field; in bulk, None when no event of the batch has it set."""
    return attrgetter(name), (lambda columns: columns[name] if columns.any(name) else None)


def _labels(name: str) -> tuple[Callable[[RequestEvent], Any], Callable[[Columns], Any]]:
    return attrgetter(name), (lambda columns: _labels_of(columns.raw(name)))


def _output_seconds(event: RequestEvent) -> float:
    """Seconds spent answering after the first token, for answers with tokens."""
    if not event.completion_tokens:
        return 0.0
    return max(event.latency_seconds - event.ttft_seconds, 0.0)


def _output_seconds_bulk(columns: Columns) -> Column | None:
    if not columns.any("completion_tokens"):
        return None
    spent = np.maximum(columns["latency_seconds"] - columns["ttft_seconds"], 0.0)
    result: Column = np.where(columns["completion_tokens"] > 0, spent, 0.0)
    return result


def _optional(name: str, kind: Kind, short: str, source: str) -> Measure:
    return Measure(name, kind, short, *_field(source), optional=source)


MEASURES: tuple[Measure, ...] = (
    Measure(
        "errors", Kind.FLAG, "e", lambda e: is_error(e.status, e.error), _errors, column="errors"
    ),
    Measure(
        "status_classes",
        Kind.LABELS,
        "c",
        lambda e: status_class(e.status),
        _status_classes,
        column="status_classes",
    ),
    Measure("request_bytes", Kind.COUNT, "qb", *_field("request_bytes"), column="request_bytes"),
    Measure("response_bytes", Kind.COUNT, "rb", *_field("response_bytes"), column="response_bytes"),
    Measure(
        "latency",
        Kind.SKETCH,
        "k",
        *_field("latency_seconds"),
        column="latency_sketch",
        keep_zero=True,
    ),
    _optional("prompt_tokens", Kind.COUNT, "pt", "prompt_tokens"),
    _optional("completion_tokens", Kind.COUNT, "ct", "completion_tokens"),
    _optional("tokens_estimated", Kind.FLAG, "te", "tokens_estimated"),
    _optional("streamed", Kind.FLAG, "st", "streamed"),
    _optional("cost_usd", Kind.SUM, "usd", "cost_usd"),
    _optional("ttft", Kind.SKETCH, "t", "ttft_seconds"),
    Measure(
        "finish_reasons", Kind.LABELS, "f", *_labels("finish_reason"), optional="finish_reason"
    ),
    Measure(
        "output_seconds",
        Kind.SUM,
        "os",
        _output_seconds,
        _output_seconds_bulk,
        optional="completion_tokens",
    ),
)
_BY_SHORT = {measure.short: measure for measure in MEASURES}
_OPTIONAL = tuple(m.optional for m in MEASURES if m.optional is not None)
_BLOB_MEASURES = tuple(m for m in MEASURES if m.column is None)
#: A stored rollup's value columns, in order (key columns come before them).
ROW_COLUMNS: tuple[str, ...] = (
    "requests",
    "errors",
    "status_classes",
    "request_bytes",
    "response_bytes",
    "latency_sum_seconds",
    "latency_sketch",
    "measures",
)

_blob_encoder = msgspec.msgpack.Encoder()
_blob_decoder = msgspec.msgpack.Decoder(dict[str, Any])


def _empty(kind: Kind) -> Any:
    if kind is Kind.SUM:
        return 0.0
    if kind is Kind.LABELS:
        return {}
    if kind is Kind.SKETCH:
        return LatencySketch()
    return 0


class LanguageStats(msgspec.Struct, kw_only=True):
    """Language-model measures of a window (present when its requests carried any)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: Requests whose token counts were estimated (a stream without ``usage``).
    tokens_estimated: int = 0
    streamed: int = 0
    cost_usd: float = 0.0
    ttft_p50_seconds: float | None = None
    ttft_p95_seconds: float | None = None
    finish_reasons: dict[str, int] = {}
    #: Generation speed: completion tokens per second of answering after the first
    #: token (the whole latency when not streamed).
    tokens_per_second: float | None = None
    #: Throughput over the window.
    prompt_tokens_per_second: float = 0.0
    completion_tokens_per_second: float = 0.0
    cost_per_hour: float = 0.0
    #: Share of answers cut by the token limit (finish reason ``length``).
    finish_reason_length_rate: float | None = None


class WindowStats(msgspec.Struct, kw_only=True):
    """Aggregates over one window. Latencies in seconds, None when no requests."""

    window_seconds: int
    requests: int = 0
    errors: int = 0
    rps: float = 0.0
    error_rate: float = 0.0
    status_classes: dict[str, int] = {}
    request_bytes: int = 0
    response_bytes: int = 0
    p50_seconds: float | None = None
    p90_seconds: float | None = None
    p95_seconds: float | None = None
    p99_seconds: float | None = None
    mean_seconds: float | None = None
    llm: LanguageStats | None = None


class Aggregate:
    """Counts, sums, label counts and sketches of a set of requests (see :data:`MEASURES`)."""

    __slots__ = ("requests", *(measure.name for measure in MEASURES))

    requests: int
    errors: int
    status_classes: dict[str, int]
    request_bytes: int
    response_bytes: int
    latency: LatencySketch
    prompt_tokens: int
    completion_tokens: int
    tokens_estimated: int
    streamed: int
    cost_usd: float
    ttft: LatencySketch
    finish_reasons: dict[str, int]
    output_seconds: float

    def __init__(self) -> None:
        self.requests = 0
        for measure in MEASURES:
            setattr(self, measure.name, _empty(measure.kind))

    def __repr__(self) -> str:
        return f"Aggregate(requests={self.requests}, errors={self.errors})"

    # -- accumulate ---------------------------------------------------------------

    def add(self, event: RequestEvent) -> None:
        """Count one event (the bulk path is :func:`aggregate_batch`)."""
        self.requests += 1
        for measure in MEASURES:
            value = measure.one(event)
            kind = measure.kind
            if kind is Kind.LABELS:
                if value:
                    labels: dict[str, int] = getattr(self, measure.name)
                    labels[value] = labels.get(value, 0) + 1
            elif kind is Kind.SKETCH:
                if measure.keep_zero or value > 0:
                    getattr(self, measure.name).add(value)
            elif kind is Kind.FLAG:
                if value:
                    setattr(self, measure.name, getattr(self, measure.name) + 1)
            else:
                setattr(self, measure.name, getattr(self, measure.name) + value)

    def merge(self, other: Aggregate) -> None:
        """Add ``other`` into this aggregate."""
        if not other.requests:
            return
        self.requests += other.requests
        for measure in MEASURES:
            name = measure.name
            kind = measure.kind
            if kind is Kind.LABELS:
                mine: dict[str, int] = getattr(self, name)
                for label, count in getattr(other, name).items():
                    mine[label] = mine.get(label, 0) + count
            elif kind is Kind.SKETCH:
                getattr(self, name).merge(getattr(other, name))
            else:
                setattr(self, name, getattr(self, name) + getattr(other, name))

    @classmethod
    def total(cls, parts: Iterable[Aggregate]) -> Aggregate:
        whole = cls()
        for part in parts:
            whole.merge(part)
        return whole

    # -- read ---------------------------------------------------------------------

    def to_stats(self, *, window_seconds: int, covered: float) -> WindowStats:
        """The window view: rates over ``covered`` seconds, quantiles from the sketches."""
        n = self.requests
        stats = WindowStats(
            window_seconds=window_seconds,
            requests=n,
            errors=self.errors,
            rps=n / covered if covered else 0.0,
            error_rate=self.errors / n if n else 0.0,
            status_classes=dict(self.status_classes),
            request_bytes=self.request_bytes,
            response_bytes=self.response_bytes,
        )
        if n:
            latency = self.latency
            stats.p50_seconds = latency.quantile(0.5)
            stats.p90_seconds = latency.quantile(0.9)
            stats.p95_seconds = latency.quantile(0.95)
            stats.p99_seconds = latency.quantile(0.99)
            stats.mean_seconds = latency.total / n
        if self.prompt_tokens or self.completion_tokens or self.ttft.count or self.cost_usd:
            stats.llm = LanguageStats(
                prompt_tokens=self.prompt_tokens,
                completion_tokens=self.completion_tokens,
                tokens_estimated=self.tokens_estimated,
                streamed=self.streamed,
                cost_usd=self.cost_usd,
                ttft_p50_seconds=self.ttft.quantile(0.5),
                ttft_p95_seconds=self.ttft.quantile(0.95),
                finish_reasons=dict(self.finish_reasons),
            )
            self._language_rates(stats.llm, covered)
        return stats

    def _language_rates(self, llm: LanguageStats, covered: float) -> None:
        if self.output_seconds > 0:
            llm.tokens_per_second = self.completion_tokens / self.output_seconds
        if covered:
            llm.prompt_tokens_per_second = self.prompt_tokens / covered
            llm.completion_tokens_per_second = self.completion_tokens / covered
            llm.cost_per_hour = self.cost_usd / covered * 3600
        finished = sum(self.finish_reasons.values())
        if finished:
            llm.finish_reason_length_rate = self.finish_reasons.get("length", 0) / finished

    # -- stored rows ----------------------------------------------------------------

    def to_columns(self) -> tuple[Any, ...]:
        """Values for :data:`ROW_COLUMNS` (status classes as a dict, sketches as bytes)."""
        extra: dict[str, Any] = {}
        for measure in _BLOB_MEASURES:
            value = getattr(self, measure.name)
            if measure.kind is Kind.SKETCH:
                if value.count:
                    extra[measure.name] = value.to_bytes()
            elif value:
                extra[measure.name] = value
        return (
            self.requests,
            self.errors,
            dict(self.status_classes),
            self.request_bytes,
            self.response_bytes,
            self.latency.total,
            self.latency.to_bytes(),
            _blob_encoder.encode(extra) if extra else b"",
        )

    @classmethod
    def from_columns(cls, values: Sequence[Any]) -> Aggregate:
        """The inverse of :meth:`to_columns`."""
        requests, errors, classes, req_bytes, resp_bytes, latency_sum, sketch, blob = values
        aggregate = cls()
        aggregate.requests = int(requests)
        aggregate.errors = int(errors)
        aggregate.status_classes = dict(classes)
        aggregate.request_bytes = int(req_bytes)
        aggregate.response_bytes = int(resp_bytes)
        if sketch:
            aggregate.latency = LatencySketch.from_bytes(bytes(sketch))
        aggregate.latency.total = float(latency_sum)
        if blob:
            for name, value in _blob_decoder.decode(bytes(blob)).items():
                measure = next((m for m in _BLOB_MEASURES if m.name == name), None)
                if measure is None:
                    continue  # written by a newer version: ignore, do not fail
                if measure.kind is Kind.SKETCH:
                    value = LatencySketch.from_bytes(value)
                setattr(aggregate, name, value)
        return aggregate

    # -- Redis hash fields --------------------------------------------------------

    def to_fields(self) -> tuple[list[tuple[str, int]], list[tuple[str, float]]]:
        """``(integer fields, float fields)`` to add with HINCRBY / HINCRBYFLOAT.

        Names: ``n`` (requests), a measure's ``short`` name for counts and sums,
        ``<short>:<label>`` for label counts, and for sketches ``<short>:<bin>``,
        ``<short>z`` (zero bucket) and ``<short>s`` (sum of values)."""
        ints: list[tuple[str, int]] = [("n", self.requests)]
        floats: list[tuple[str, float]] = []
        for measure in MEASURES:
            value = getattr(self, measure.name)
            short = measure.short
            kind = measure.kind
            if kind is Kind.LABELS:
                ints.extend((f"{short}:{label}", count) for label, count in value.items())
            elif kind is Kind.SKETCH:
                if value.count:
                    ints.extend((f"{short}:{key}", count) for key, count in value.bins.items())
                    if value.zero_count:
                        ints.append((f"{short}z", value.zero_count))
                    floats.append((f"{short}s", value.total))
            elif kind is Kind.SUM:
                if value:
                    floats.append((short, value))
            elif value:
                ints.append((short, value))
        return ints, floats

    @classmethod
    def from_fields(cls, fields: Mapping[str, float]) -> Aggregate:
        """The inverse of :meth:`to_fields` (sketch minimum and maximum become the
        outer bin edges, within the sketch's relative accuracy)."""
        aggregate = cls()
        sketches: dict[str, tuple[dict[int, int], list[float]]] = {}
        for name, value in fields.items():
            if name == "n":
                aggregate.requests = int(value)
                continue
            short, colon, rest = name.partition(":")
            measure = _BY_SHORT.get(short)
            if measure is None and not colon and name[:-1] in _BY_SHORT:
                # "<short>z" and "<short>s" of a sketch.
                bins, extra = sketches.setdefault(name[:-1], ({}, [0.0, 0.0]))
                extra[0 if name[-1] == "z" else 1] += value
                continue
            if measure is None:
                continue
            if measure.kind is Kind.LABELS:
                getattr(aggregate, measure.name)[rest] = int(value)
            elif measure.kind is Kind.SKETCH:
                sketches.setdefault(short, ({}, [0.0, 0.0]))[0][int(rest)] = int(value)
            elif measure.kind is Kind.SUM:
                setattr(aggregate, measure.name, float(value))
            else:
                setattr(aggregate, measure.name, int(value))
        for short, (bins, (zero, total)) in sketches.items():
            sketch: LatencySketch = getattr(aggregate, _BY_SHORT[short].name)
            sketch.absorb(zero=int(zero), bins=bins, total=total)
        return aggregate


# -- the bulk path ------------------------------------------------------------------


def aggregate_batch(
    columns: Columns,
    *,
    dims: Sequence[str],
    bucket: Callable[[Columns], Column] | None = None,
) -> dict[tuple[Hashable, ...], Aggregate]:
    """One :class:`Aggregate` per series of a batch, computed a measure at a time.

    A series is the values of ``dims`` (event fields), preceded by the integer
    ``bucket`` (for instance the second or minute) when one is given. Sums are
    ``bincount``s over the series codes; a sketch's bins are counted with one
    ``unique`` over (series, bin) pairs.
    """
    n = len(columns)
    if n == 0:
        return {}
    parts: list[Iterable[Hashable]] = [columns.raw(dim) for dim in dims]
    if bucket is not None:
        parts.insert(0, bucket(columns).astype(np.int64).tolist())
    index: dict[tuple[Hashable, ...], int] = {}
    if parts:
        # Each event maps to the position of its series' first event (C-speed), then
        # ``unique`` makes those positions dense codes in first-seen order.
        keys = zip(*parts, strict=True)
        firsts = np.fromiter(map(index.setdefault, keys, positions()), np.intp, n)
        codes = np.unique(firsts, return_inverse=True)[1].astype(np.intp)
    else:  # one series: the whole batch
        index[()] = 0
        codes = np.zeros(n, dtype=np.intp)
    groups = len(index)
    aggregates = [Aggregate() for _ in range(groups)]
    for aggregate, count in zip(
        aggregates, np.bincount(codes, minlength=groups).tolist(), strict=True
    ):
        aggregate.requests = count
    optional = columns.any_of(_OPTIONAL)
    for measure in MEASURES:
        if measure.optional is None or optional:
            _bulk(measure, measure.many(columns), codes, groups, aggregates)
    return dict(zip(index, aggregates, strict=True))


def _bulk(
    measure: Measure, values: Any, codes: Column, groups: int, aggregates: list[Aggregate]
) -> None:
    if values is None:  # nothing in this batch
        return
    name = measure.name
    kind = measure.kind
    if kind is Kind.LABELS:
        _bulk_labels(name, values, codes, groups, aggregates)
    elif kind is Kind.SKETCH:
        _bulk_sketch(measure, values, codes, groups, aggregates)
    elif kind is Kind.FLAG:
        mask = np.asarray(values, dtype=bool)
        if mask.any():
            counts = np.bincount(codes[mask], minlength=groups).tolist()
            for aggregate, count in zip(aggregates, counts, strict=True):
                setattr(aggregate, name, count)
    else:
        sums = np.bincount(codes, weights=values, minlength=groups).tolist()
        cast = float if kind is Kind.SUM else int
        for aggregate, total in zip(aggregates, sums, strict=True):
            setattr(aggregate, name, cast(total))


def _bulk_labels(
    name: str, values: LabelCodes, codes: Column, groups: int, aggregates: list[Aggregate]
) -> None:
    label_codes, names = values
    width = len(names)
    table = np.bincount(codes * width + label_codes, minlength=groups * width)
    for aggregate, row in zip(aggregates, table.reshape(groups, width).tolist(), strict=True):
        found = {label: count for label, count in zip(names, row, strict=True) if count}
        found.pop("", None)  # "" means "none": not counted
        setattr(aggregate, name, found)


def _bulk_sketch(
    measure: Measure, values: Column, codes: Column, groups: int, aggregates: list[Aggregate]
) -> None:
    values = np.asarray(values, dtype=np.float64)
    if not measure.keep_zero:
        kept = values > 0.0
        if not kept.any():
            return
        values, codes = values[kept], codes[kept]
    totals = np.bincount(codes, weights=values, minlength=groups).tolist()
    positive = values > MIN_VALUE
    zeros = np.bincount(codes[~positive], minlength=groups).tolist()
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.searchsorted(sorted_codes, np.arange(groups))
    present = np.bincount(codes, minlength=groups) > 0
    minima = np.zeros(groups)
    maxima = np.zeros(groups)
    if present.any():
        ordered = values[order]
        at = starts[present]
        minima[present] = np.minimum.reduceat(ordered, at)
        maxima[present] = np.maximum.reduceat(ordered, at)
    sketch = getattr(aggregates[0], measure.name)
    keys = np.ceil(np.log(values[positive]) / sketch.gamma_ln).astype(np.int64)
    bins_by_group: list[dict[int, int]] = [{} for _ in range(groups)]
    if keys.size:
        low = int(keys.min())
        span = int(keys.max()) - low + 1
        pairs, counts = np.unique(codes[positive] * span + (keys - low), return_counts=True)
        owners = pairs // span
        bounds = np.searchsorted(owners, np.arange(groups + 1)).tolist()
        bin_keys = (pairs % span + low).tolist()
        bin_counts = counts.tolist()
        for group in range(groups):
            lo, hi = bounds[group], bounds[group + 1]
            if hi > lo:
                bins_by_group[group] = dict(zip(bin_keys[lo:hi], bin_counts[lo:hi], strict=True))
    minima_list, maxima_list = minima.tolist(), maxima.tolist()
    flags = present.tolist()
    for group, aggregate in enumerate(aggregates):
        if flags[group]:
            getattr(aggregate, measure.name).absorb(
                zero=zeros[group],
                bins=bins_by_group[group],
                total=totals[group],
                minimum=minima_list[group],
                maximum=maxima_list[group],
            )


def floor_seconds(step: int) -> Callable[[Columns], Column]:
    """A ``bucket`` for :func:`aggregate_batch`: the event's start, floored to ``step``."""

    def bucket(columns: Columns) -> Column:
        return np.floor(columns["start"] / step) * step

    return bucket


def finished_second(columns: Columns) -> Column:
    """A ``bucket`` for :func:`aggregate_batch`: the second the request finished in."""
    finished: Column = np.floor(columns["start"] + columns["latency_seconds"])
    return finished
