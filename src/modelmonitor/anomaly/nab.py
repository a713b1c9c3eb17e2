"""Numenta Anomaly Benchmark (NAB v1.1) scoring, written from its published rules.

A detector gives every row of a file a score in [0, 1]. For one threshold, rows
at or above it are detections. Within a labelled window only the earliest
detection counts, worth ``A_TP * sigma(y) / sigma(-1)``; a missed window costs
``A_FN``; a detection outside every window costs ``A_FP``, softened by the
sigmoid when it falls shortly after the preceding window. The first
``min(floor(0.15 N), 750)`` rows of a file (probation) are not scored. One
threshold per profile is fitted over the whole corpus by an exhaustive sweep,
and the raw score is normalised to 0 (null detector) .. 100 (perfect detector).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = [
    "PROFILES",
    "CorpusScore",
    "FileLayout",
    "NabFile",
    "Profile",
    "ThresholdScore",
    "file_raw_score",
    "fit_threshold",
    "load_corpus",
    "load_windows",
    "normalize",
    "probation_length",
    "scaled_sigmoid",
    "score_corpus",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Profile:
    """Cost weights of one NAB application profile."""

    name: str
    a_tp: float
    a_fp: float
    a_fn: float


#: The three NAB profiles (A_TN is listed by NAB but never used by its scorer).
PROFILES: dict[str, Profile] = {
    "standard": Profile("standard", 1.0, 0.11, 1.0),
    "reward_low_FP_rate": Profile("reward_low_FP_rate", 1.0, 0.22, 1.0),
    "reward_low_FN_rate": Profile("reward_low_FN_rate", 1.0, 0.11, 2.0),
}


def probation_length(n_rows: int) -> int:
    """Rows at the start of a file that are not scored: ``min(floor(0.15 N), 750)``."""
    return min(math.floor(0.15 * n_rows), 750)


def scaled_sigmoid(y: float) -> float:
    """NAB's ``sigma(y) = 2 / (1 + e^(5y)) - 1`` for ``y <= 3``, else ``-1``."""
    if y > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def load_windows(path: str | Path) -> dict[str, list[tuple[str, str]]]:
    """Read ``combined_windows.json``: file key -> list of ``(start, end)`` timestamps."""
    raw = json.loads(Path(path).read_text())
    return {key: [(str(a), str(b)) for a, b in spans] for key, spans in raw.items()}


def _to_seconds(timestamps: Sequence[str]) -> IntArray:
    stamps = np.array([t.strip() for t in timestamps], dtype="datetime64[s]")
    return stamps.astype(np.int64)


@dataclass(frozen=True, slots=True)
class FileLayout:
    """Everything about one file that scoring needs, independent of the detector.

    ``window`` holds the window index of each scored row (-1 outside every window),
    ``tp_unit`` the unweighted ``sigma(y) / sigma(-1)`` of in-window rows and
    ``fp_unit`` the unweighted (negative) false-positive cost of the other rows.
    Arrays cover the scored rows only, i.e. rows ``probation`` .. ``n_rows - 1``.
    """

    name: str
    n_rows: int
    probation: int
    n_windows: int
    window: IntArray
    tp_unit: FloatArray
    fp_unit: FloatArray

    @classmethod
    def build(
        cls, name: str, timestamps: Sequence[str], windows: Sequence[tuple[str, str]]
    ) -> FileLayout:
        """Map window timestamps to rows and precompute each row's unweighted sweep score."""
        n = len(timestamps)
        secs = _to_seconds(timestamps)
        bounds: list[tuple[int, int]] = []
        for start, end in windows:
            (lo, hi) = _to_seconds([start, end])
            left = int(np.searchsorted(secs, lo, side="left"))
            right = int(np.searchsorted(secs, hi, side="right")) - 1
            if right >= left:
                bounds.append((left, right))
        bounds.sort()
        window = np.full(n, -1, dtype=np.int64)
        tp_unit = np.zeros(n)
        fp_unit = np.full(n, -1.0)
        sig_m1 = scaled_sigmoid(-1.0)
        for k, (left, right) in enumerate(bounds):
            width = right - left + 1
            rows = np.arange(left, right + 1)
            window[left : right + 1] = k
            y = -(right - rows + 1) / width
            tp_unit[left : right + 1] = (2.0 / (1.0 + np.exp(5.0 * y)) - 1.0) / sig_m1
            fp_unit[left : right + 1] = 0.0
            stop = bounds[k + 1][0] if k + 1 < len(bounds) else n
            after = np.arange(right + 1, stop)
            if after.size:
                y_after = (after - right) / max(width - 1, 1)
                cost = 2.0 / (1.0 + np.exp(np.minimum(5.0 * y_after, 50.0))) - 1.0
                fp_unit[right + 1 : stop] = np.where(y_after > 3.0, -1.0, cost)
        p = probation_length(n)
        scored_windows = np.unique(window[p:][window[p:] >= 0])
        return cls(
            name=name,
            n_rows=n,
            probation=p,
            n_windows=int(scored_windows.size),
            window=window[p:],
            tp_unit=tp_unit[p:],
            fp_unit=fp_unit[p:],
        )


def file_raw_score(
    layout: FileLayout, scores: Sequence[float] | FloatArray, threshold: float, profile: Profile
) -> float:
    """Raw NAB score of one file at one threshold (rows with ``score >= threshold`` fire)."""
    s = np.asarray(scores, dtype=np.float64)[layout.probation :]
    hit = s >= threshold
    total = float(profile.a_fp * layout.fp_unit[hit & (layout.window < 0)].sum())
    for k in np.unique(layout.window[layout.window >= 0]):
        in_k = layout.window == k
        detected = hit & in_k
        if detected.any():
            total += profile.a_tp * float(layout.tp_unit[detected].max())
        else:
            total -= profile.a_fn
    return total


@dataclass(frozen=True, slots=True)
class ThresholdScore:
    """The best threshold of a sweep and the corpus raw score it gives."""

    threshold: float
    raw: float


def fit_threshold(
    layouts: Sequence[FileLayout],
    scores: Sequence[Sequence[float] | FloatArray],
    profile: Profile,
) -> ThresholdScore:
    """Exhaustive corpus-wide threshold search, vectorised.

    All scored rows are sorted by descending score; lowering the threshold past a
    row adds its false-positive cost, or raises its window's value when it is the
    earliest detection of that window so far. The running total is a cumulative
    sum, evaluated where the score changes. Ties between equal totals go to the
    highest threshold, as in NAB. No detection at all is reported as threshold 1.1.
    """
    s_parts, w_parts, tp_parts, fp_parts, idx_parts = [], [], [], [], []
    offset = 0
    for layout, sc in zip(layouts, scores, strict=True):
        s_parts.append(np.asarray(sc, dtype=np.float64)[layout.probation :])
        w = layout.window
        w_parts.append(np.where(w >= 0, w + offset, -1))
        offset += int(w.max()) + 1 if w.size and w.max() >= 0 else 0
        tp_parts.append(layout.tp_unit)
        fp_parts.append(layout.fp_unit)
        idx_parts.append(np.arange(w.size, dtype=np.int64))
    s = np.concatenate(s_parts) if s_parts else np.zeros(0)
    win = np.concatenate(w_parts) if w_parts else np.zeros(0, dtype=np.int64)
    tp = np.concatenate(tp_parts) if tp_parts else np.zeros(0)
    fp = np.concatenate(fp_parts) if fp_parts else np.zeros(0)
    row = np.concatenate(idx_parts) if idx_parts else np.zeros(0, dtype=np.int64)
    n_windows = int(np.unique(win[win >= 0]).size)
    base = -profile.a_fn * n_windows
    if s.size == 0:
        return ThresholdScore(1.1, base)

    order = np.argsort(-s, kind="stable")
    s, win, tp, fp, row = s[order], win[order], tp[order], fp[order], row[order]
    delta = np.where(win < 0, profile.a_fp * fp, 0.0)

    # Window rows: a window is worth its earliest detection, i.e. its largest tp_unit
    # so far. Group window rows (keeping sweep order) and take a running maximum;
    # later groups are lifted above earlier ones so the running maximum restarts.
    in_win = np.flatnonzero(win >= 0)
    if in_win.size:
        by_group = in_win[np.argsort(win[in_win], kind="stable")]
        g = win[by_group].astype(np.float64)
        lift = 2.0 * (abs(profile.a_tp) + 1.0) * g
        best = np.maximum.accumulate(profile.a_tp * tp[by_group] + lift) - lift
        first = np.r_[True, g[1:] != g[:-1]]
        prev = np.r_[0.0, best[:-1]]
        prev[first] = -profile.a_fn
        delta[by_group] = best - prev

    total = base + np.cumsum(delta)
    last_of_value = np.r_[s[1:] != s[:-1], True]
    cand_scores = np.r_[base, total[last_of_value]]
    cand_thresh = np.r_[1.1, s[last_of_value]]
    pick = int(np.argmax(cand_scores))
    return ThresholdScore(float(cand_thresh[pick]), float(cand_scores[pick]))


@dataclass(frozen=True, slots=True)
class NabFile:
    """One NAB data file: its key (``category/name.csv``), rows and scoring layout."""

    key: str
    timestamps: list[str]
    values: FloatArray
    layout: FileLayout


def load_corpus(nab_dir: str | Path) -> list[NabFile]:
    """Read every ``data/*/*.csv`` under ``nab_dir`` with its windows, sorted by key."""
    root = Path(nab_dir)
    windows = load_windows(root / "labels" / "combined_windows.json")
    files: list[NabFile] = []
    for path in sorted((root / "data").glob("*/*.csv")):
        key = f"{path.parent.name}/{path.name}"
        lines = path.read_text().splitlines()[1:]
        stamps = [line.split(",", 1)[0] for line in lines if line.strip()]
        values = np.array([float(line.split(",", 1)[1]) for line in lines if line.strip()])
        layout = FileLayout.build(key, stamps, windows.get(key, []))
        files.append(NabFile(key, stamps, values, layout))
    return files


def normalize(raw: float, n_windows: int, profile: Profile) -> float:
    """``100 (S - S_null) / (S_perfect - S_null)``, S_perfect = windows, S_null = -A_FN windows."""
    perfect = profile.a_tp * n_windows
    null = -profile.a_fn * n_windows
    if perfect == null:
        return 0.0
    return 100.0 * (raw - null) / (perfect - null)


@dataclass(frozen=True, slots=True)
class CorpusScore:
    """One profile's result over a corpus."""

    profile: Profile
    threshold: float
    raw: float
    normalized: float
    per_file: dict[str, float]


def score_corpus(
    layouts: Sequence[FileLayout],
    scores: Sequence[Sequence[float] | FloatArray],
    profiles: Mapping[str, Profile] = PROFILES,
    thresholds: Mapping[str, float] | None = None,
) -> dict[str, CorpusScore]:
    """Fit (or apply the given) threshold per profile and score the corpus."""
    n_windows = sum(layout.n_windows for layout in layouts)
    out: dict[str, CorpusScore] = {}
    for name, profile in profiles.items():
        if thresholds is not None and name in thresholds:
            threshold = thresholds[name]
        else:
            threshold = fit_threshold(layouts, scores, profile).threshold
        per_file = {
            layout.name: file_raw_score(layout, sc, threshold, profile)
            for layout, sc in zip(layouts, scores, strict=True)
        }
        raw = sum(per_file.values())
        out[name] = CorpusScore(
            profile, threshold, raw, normalize(raw, n_windows, profile), per_file
        )
    return out
