"""Score the streaming anomaly detector on NAB data with nested cross-validation.

``make bench-anomaly`` runs every candidate design of
:class:`modelmonitor.anomaly.AnomalyDetector` (members, log offset, refractory
period) over every ``data/*/*.csv`` of a NAB directory (default
``<repo>/../shared/nab``; ``--nab-dir`` or ``MODELMONITOR_NAB_DIR``), one point at
a time with the file's probation as learning period, and caches the scores in
``bench/results/anomaly-cache`` (keyed by the detector's source, so a code change
recomputes).

Protocol (docs/anomaly.md). Outer folds split the files in two, half of each
category on each side, ``--repeats`` times with different seeds, both ways. On the
*choosing* half, every candidate is scored by inner split-halves (thresholds
fitted on one quarter, scored on the other, both ways, three random splits); the
candidate with the best inner score is taken, its three thresholds are fitted on
the whole choosing half, and it is scored on the other half, which played no
role. That out-of-sample figure is printed first; the in-sample figure (the same
choice and thresholds made on all files, scored on them) follows, then the
leave-one-category-out stress test, false alarms per day, and speed.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modelmonitor.anomaly import AnomalyDetector
from modelmonitor.anomaly.nab import (
    PROFILES,
    NabFile,
    file_raw_score,
    fit_threshold,
    load_corpus,
    normalize,
)

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "bench" / "results" / "anomaly-cache"
SHORT = {"standard": "standard", "reward_low_FP_rate": "low FP", "reward_low_FN_rate": "low FN"}
Scores = list[np.ndarray]

#: NAB v1.1 README scoreboard (whole 58-file corpus): standard, low FP, low FN.
PUBLISHED: list[tuple[str, float, float, float]] = [
    ("ARTime", 74.9, 65.1, 80.4),
    ("Numenta HTM", 70.5, 62.6, 75.2),
    ("CAD OSE", 69.9, 67.0, 73.2),
    ("earthgecko Skyline", 58.2, 46.2, 63.9),
    ("KNN CAD", 58.0, 43.4, 64.8),
    ("Relative Entropy", 54.6, 47.6, 58.8),
    ("Random Cut Forest", 51.7, 38.4, 59.7),
    ("Twitter ADVec", 47.1, 33.6, 53.5),
    ("Windowed Gaussian", 39.6, 20.9, 47.4),
    ("Etsy Skyline", 35.7, 27.1, 44.5),
    ("Bayesian Changepoint", 17.7, 3.2, 32.2),
    ("Random", 11.0, 1.2, 19.5),
]


@dataclass(frozen=True)
class Design:
    """One candidate: which members, the log offset quantile, the refractory period."""

    members: tuple[str, ...]
    log_quantile: float
    refractory: int

    @property
    def label(self) -> str:
        return f"{'+'.join(self.members)} q{self.log_quantile:g} r{self.refractory}"


#: The candidates. Members: value novelty alone, with the baseline, with the robust
#: spread, or all three (spread alone, baseline + spread and novelty + spread scored
#: 42-64 standard in-sample in the first run and were never chosen: docs/anomaly.md).
#: Log offset: a typical value (median) or the 90th percentile. Refractory: 30 to
#: 240 points (2.5 h to 20 h at NAB's usual 5-minute sampling).
DESIGNS = [
    Design(members, q, r)
    for members in (
        ("novelty",),
        ("novelty", "baseline"),
        ("novelty", "baseline", "spread"),
    )
    for q in (0.5, 0.9)
    for r in (30, 60, 120, 240)
]


def nab_dir(arg: str | None) -> Path:
    """``--nab-dir``, else ``$MODELMONITOR_NAB_DIR``, else ``<repo>/../shared/nab``."""
    chosen = arg or os.environ.get("MODELMONITOR_NAB_DIR") or str(REPO.parent / "shared" / "nab")
    return Path(chosen).resolve()


def _source_hash() -> str:
    """A key for the detector's code: its syntax tree without docstrings, so that a
    comment or a reformat keeps the cache and any change of behaviour does not."""
    folder = REPO / "src" / "modelmonitor" / "anomaly"
    digest = hashlib.sha256()
    for name in ("detector.py", "_members.py", "_tail.py"):
        tree = ast.parse((folder / name).read_text())
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if (
                isinstance(body, list)
                and body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                body[0] = ast.Pass()
        digest.update(ast.dump(tree).encode())
    return digest.hexdigest()[:12]


def _stamps(f: NabFile) -> list[float]:
    seconds = np.array(f.timestamps, dtype="datetime64[s]").astype(np.int64)
    return [float(t) for t in seconds.tolist()]


def run_detector(f: NabFile, design: Design) -> tuple[np.ndarray, float]:
    """Scores for one file and the seconds spent in ``update``."""
    detector = AnomalyDetector(
        learning_period=f.layout.probation,
        refractory=design.refractory,
        members=design.members,
        log_quantile=design.log_quantile,
    )
    update = detector.update
    values = f.values.tolist()
    out = [0.0] * len(values)
    # CPU time of this process: on a shared machine, wall time counts other work too.
    start = time.process_time()
    for i, (t, v) in enumerate(zip(_stamps(f), values, strict=True)):
        out[i] = update(t, v).score
    return np.array(out), time.process_time() - start


def corpus_scores(files: list[NabFile], design: Design, version: str) -> Scores:
    """Scores of every file for one design, from the cache when present."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{version}-{design.label.replace(' ', '_').replace('+', '-')}.npz"
    if path.is_file():
        with np.load(path) as cached:
            if all(f.key in cached.files for f in files):
                return [cached[f.key] for f in files]
    scores = [run_detector(f, design)[0] for f in files]
    np.savez_compressed(path, **{f.key: s for f, s in zip(files, scores, strict=True)})
    return scores


def fit(files: list[NabFile], scores: Scores, idx: Sequence[int]) -> dict[str, float]:
    """One threshold per profile, fitted on the files ``idx``."""
    layouts = [files[i].layout for i in idx]
    chosen = [scores[i] for i in idx]
    return {name: fit_threshold(layouts, chosen, p).threshold for name, p in PROFILES.items()}


def raw(
    files: list[NabFile], scores: Scores, idx: Sequence[int], th: dict[str, float]
) -> dict[str, float]:
    """Raw NAB score per profile of the files ``idx`` at thresholds ``th``."""
    return {
        name: sum(file_raw_score(files[i].layout, scores[i], th[name], p) for i in idx)
        for name, p in PROFILES.items()
    }


def norm(files: list[NabFile], idx: Sequence[int], raws: dict[str, float]) -> dict[str, float]:
    windows = sum(files[i].layout.n_windows for i in idx)
    return {name: normalize(raws[name], windows, PROFILES[name]) for name in PROFILES}


def halves(files: list[NabFile], idx: Sequence[int], seed: int) -> tuple[list[int], list[int]]:
    """Split ``idx`` in two, half of each category on each side (odd ones alternate)."""
    rng = random.Random(seed)
    a: list[int] = []
    b: list[int] = []
    by_category: dict[str, list[int]] = {}
    for i in idx:
        by_category.setdefault(files[i].key.split("/", 1)[0], []).append(i)
    for members in by_category.values():
        members = sorted(members)
        rng.shuffle(members)
        # Odd-sized categories put their extra file on the smaller side.
        first, second = (a, b) if len(a) <= len(b) else (b, a)
        first.extend(members[: (len(members) + 1) // 2])
        second.extend(members[(len(members) + 1) // 2 :])
    return sorted(a), sorted(b)


def inner_score(files: list[NabFile], scores: Scores, idx: Sequence[int], seed: int) -> float:
    """Split-half score (standard + low FP + low FN, summed) inside ``idx``: how a
    design does on files its thresholds were not fitted on."""
    a, b = halves(files, idx, seed)
    total = {name: 0.0 for name in PROFILES}
    for fit_on, test_on in ((a, b), (b, a)):
        got = raw(files, scores, test_on, fit(files, scores, fit_on))
        for name in PROFILES:
            total[name] += got[name]
    return sum(norm(files, idx, total).values())


#: Inner split-halves averaged per choice (one split of a dozen files is noisy).
INNER_SPLITS = 3


def choose(
    files: list[NabFile], all_scores: dict[Design, Scores], idx: Sequence[int], seed: int
) -> Design:
    """The design with the best inner split-half score on the files ``idx``, averaged
    over ``INNER_SPLITS`` random splits."""

    def inner(d: Design) -> float:
        return sum(
            inner_score(files, all_scores[d], idx, seed * INNER_SPLITS + k)
            for k in range(INNER_SPLITS)
        )

    return max(DESIGNS, key=inner)


@dataclass
class Outcome:
    """Nested CV result: normalised scores, the designs chosen, each file's out-of-sample
    standard threshold and scores (for false alarms per day)."""

    scores: dict[str, float]
    chosen: list[Design]
    file_threshold: dict[int, list[tuple[Design, float]]]


def nested(
    files: list[NabFile], all_scores: dict[Design, Scores], folds: list[tuple[list[int], list[int]]]
) -> Outcome:
    """Choose on one side of each fold, score the other; the totals are normalised over
    every file scored (each file once per repeat)."""
    total = {name: 0.0 for name in PROFILES}
    windows = 0
    chosen: list[Design] = []
    per_file: dict[int, list[tuple[Design, float]]] = {}
    for k, (choose_on, test_on) in enumerate(folds):
        design = choose(files, all_scores, choose_on, seed=1000 + k)
        chosen.append(design)
        scores = all_scores[design]
        th = fit(files, scores, choose_on)
        got = raw(files, scores, test_on, th)
        for name in PROFILES:
            total[name] += got[name]
        windows += sum(files[i].layout.n_windows for i in test_on)
        for i in test_on:
            per_file.setdefault(i, []).append((design, th["standard"]))
    out = {name: normalize(total[name], windows, PROFILES[name]) for name in PROFILES}
    return Outcome(out, chosen, per_file)


def alarms_per_day(
    f: NabFile, scores: np.ndarray, threshold: float, quiet_only: bool
) -> tuple[int, float]:
    """Alarms and days after probation; ``quiet_only``: rows far from every window
    (NAB charges them the full false-positive cost), else every row."""
    layout = f.layout
    s = scores[layout.probation :]
    stamps = np.array(f.timestamps[layout.probation :], dtype="datetime64[s]").astype(np.int64)
    rows = layout.fp_unit <= -1.0 if quiet_only else np.ones(s.size, dtype=bool)
    if not rows.any():
        return 0, 0.0
    step = float(np.median(np.diff(stamps))) if stamps.size > 1 else 0.0
    return int((s[rows] >= threshold).sum()), rows.sum() * step / 86_400.0


def false_alarms(
    files: list[NabFile], all_scores: dict[Design, Scores], outcome: Outcome
) -> tuple[float, float]:
    """Alarms per day at out-of-sample standard thresholds: on the files without
    anomalies, and on quiet stretches of all files."""
    counts = {"none": [0, 0.0], "quiet": [0, 0.0]}
    for i, uses in outcome.file_threshold.items():
        f = files[i]
        for design, threshold in uses:
            scores = all_scores[design][i]
            if f.layout.n_windows == 0:
                n, days = alarms_per_day(f, scores, threshold, quiet_only=False)
                counts["none"][0] += n
                counts["none"][1] += days
            n, days = alarms_per_day(f, scores, threshold, quiet_only=True)
            counts["quiet"][0] += n
            counts["quiet"][1] += days
    return (
        counts["none"][0] / max(counts["none"][1], 1e-9),
        counts["quiet"][0] / max(counts["quiet"][1], 1e-9),
    )


def fmt(scores: dict[str, float]) -> str:
    return " / ".join(f"{scores[name]:.1f}" for name in PROFILES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nab-dir", help="NAB directory (data/, labels/)")
    parser.add_argument("--repeats", type=int, default=5, help="outer split-half repeats")
    parser.add_argument("-v", "--verbose", action="store_true", help="every design's scores")
    args = parser.parse_args(argv)

    root = nab_dir(args.nab_dir)
    if not (root / "labels" / "combined_windows.json").is_file():
        print(f"bench-anomaly: no NAB data in {root} (set --nab-dir)", file=sys.stderr)
        return 2
    files = load_corpus(root)
    version = _source_hash()
    all_scores = {d: corpus_scores(files, d, version) for d in DESIGNS}
    everything = list(range(len(files)))
    points = sum(len(f.values) for f in files)
    windows = sum(f.layout.n_windows for f in files)

    folds = []
    for r in range(args.repeats):
        a, b = halves(files, everything, seed=r)
        folds += [(a, b), (b, a)]
    outer = nested(files, all_scores, folds)
    categories = sorted({f.key.split("/", 1)[0] for f in files})
    loco_folds = []
    for c in categories:
        test_on = [i for i, f in enumerate(files) if f.key.startswith(c + "/")]
        loco_folds.append(([i for i in everything if i not in test_on], test_on))
    loco = nested(files, all_scores, loco_folds)
    best = choose(files, all_scores, everything, seed=0)
    th = fit(files, all_scores[best], everything)
    inside = norm(files, everything, raw(files, all_scores[best], everything, th))
    none_rate, quiet_rate = false_alarms(files, all_scores, outer)

    print(f"NAB: {len(files)} files, {points} points, {windows} windows, from {root}")
    print(f"{len(DESIGNS)} candidate designs; scores: standard / low FP / low FN")
    print(f"OUT-OF-SAMPLE (nested, {args.repeats} x 2 split-half folds): {fmt(outer.scores)}")
    print(f"in-sample (chosen and thresholds fitted on all {len(files)} files): {fmt(inside)}")
    gap = {name: inside[name] - outer.scores[name] for name in PROFILES}
    print(f"gap in-sample - out-of-sample: {fmt(gap)}")
    print(f"leave-one-category-out (nested, {len(categories)} folds): {fmt(loco.scores)}")
    print(
        f"false alarms per day (out-of-sample standard thresholds): {none_rate:.2f} on the"
        f" files without anomalies, {quiet_rate:.2f} on quiet stretches of all files"
    )
    picks: dict[str, int] = {}
    for d in outer.chosen + loco.chosen:
        picks[d.label] = picks.get(d.label, 0) + 1
    print(
        "designs chosen by the outer folds: "
        + ", ".join(f"{k} x{v}" for k, v in sorted(picks.items(), key=lambda kv: -kv[1]))
    )
    print(
        f"shipped design (chosen on all files): {best.label}; thresholds "
        + " / ".join(f"{th[name]:.4f}" for name in PROFILES)
    )
    seconds = 0.0
    for f in files:
        seconds += run_detector(f, best)[1]
    print(f"speed: {1e6 * seconds / points:.2f} us CPU per point ({best.label})")
    print()
    print(f"{'scoreboard (normalized)':<34} {'standard':>8} {'low FP':>7} {'low FN':>7}")
    rows = [
        ("ModelMonitor, out-of-sample", *outer.scores.values()),
        ("ModelMonitor, in-sample", *inside.values()),
        *PUBLISHED,
    ]
    for label, std, low_fp, low_fn in sorted(rows, key=lambda row: -row[1]):
        print(f"{label:<34} {std:>8.1f} {low_fp:>7.1f} {low_fn:>7.1f}")
    print("published scores are on all 58 NAB files; ours on the files above")
    if args.verbose:
        print()
        print("every design, in-sample (thresholds fitted on all files) and inner split-half:")
        for d in DESIGNS:
            s = all_scores[d]
            ins = norm(files, everything, raw(files, s, everything, fit(files, s, everything)))
            inner = inner_score(files, s, everything, 0)
            print(f"  {d.label:<36} {fmt(ins)}   split-half sum {inner:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
