"""Score the streaming anomaly detector on NAB data: ``make bench-anomaly``.

Runs :class:`modelmonitor.anomaly.AnomalyDetector` over every ``data/*/*.csv`` of a
NAB directory (default ``<repo>/../shared/nab``; ``--nab-dir`` or
``MODELMONITOR_NAB_DIR`` override it), one point at a time with the file's
probation as learning period, and scores the result with our NAB scorer.
Prints per-profile normalised scores with the fitted thresholds, microseconds
per point, the published scoreboard, and robustness: split-half (thresholds
fitted on one half of the files, scored on the other, both ways) and
leave-one-category-out (thresholds fitted on six categories, scored on the seventh).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
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
    score_corpus,
)

REPO = Path(__file__).resolve().parents[1]
SHORT = {"standard": "standard", "reward_low_FP_rate": "low FP", "reward_low_FN_rate": "low FN"}

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


def nab_dir(arg: str | None) -> Path:
    """``--nab-dir``, else ``$MODELMONITOR_NAB_DIR``, else ``<repo>/../shared/nab``."""
    chosen = arg or os.environ.get("MODELMONITOR_NAB_DIR") or str(REPO.parent / "shared" / "nab")
    return Path(chosen).resolve()


def run_detector(f: NabFile, sensitivity: float, refractory: int) -> tuple[np.ndarray, float]:
    """Scores for one file and the seconds spent in ``update``."""
    stamps = np.array(f.timestamps, dtype="datetime64[s]").astype(np.int64).tolist()
    values = f.values.tolist()
    detector = AnomalyDetector(
        sensitivity=sensitivity, learning_period=f.layout.probation, refractory=refractory
    )
    update = detector.update
    out = [0.0] * len(values)
    start = time.perf_counter()
    for i, (t, v) in enumerate(zip(stamps, values, strict=True)):
        out[i] = update(float(t), v).score
    return np.array(out), time.perf_counter() - start


def held_out(
    files: list[NabFile], scores: list[np.ndarray], folds: list[list[int]]
) -> dict[str, float]:
    """Normalised score where each fold is scored with thresholds fitted on the other files."""
    n_windows = sum(f.layout.n_windows for f in files)
    out: dict[str, float] = {}
    for name, profile in PROFILES.items():
        total = 0.0
        for test_on in folds:
            fit_on = [i for i in range(len(files)) if i not in test_on]
            threshold = fit_threshold(
                [files[i].layout for i in fit_on], [scores[i] for i in fit_on], profile
            ).threshold
            total += sum(
                file_raw_score(files[i].layout, scores[i], threshold, profile) for i in test_on
            )
        out[name] = normalize(total, n_windows, profile)
    return out


def split_half(files: list[NabFile], scores: list[np.ndarray]) -> dict[str, float]:
    """Thresholds fitted on every other file, scored on the rest, both ways."""
    return held_out(files, scores, [list(range(0, len(files), 2)), list(range(1, len(files), 2))])


def leave_category_out(files: list[NabFile], scores: list[np.ndarray]) -> dict[str, float]:
    """Thresholds fitted on all other categories, scored on each category in turn."""
    categories = sorted({f.key.split("/", 1)[0] for f in files})
    folds = [[i for i, f in enumerate(files) if f.key.split("/", 1)[0] == c] for c in categories]
    return held_out(files, scores, folds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nab-dir", help="NAB directory (data/, labels/)")
    parser.add_argument("--sensitivity", type=float, default=0.5)
    parser.add_argument("--refractory", type=int, default=60)
    parser.add_argument("-v", "--verbose", action="store_true", help="per-file raw scores")
    args = parser.parse_args(argv)

    root = nab_dir(args.nab_dir)
    if not (root / "labels" / "combined_windows.json").is_file():
        print(f"bench-anomaly: no NAB data in {root} (set --nab-dir)", file=sys.stderr)
        return 2
    files = load_corpus(root)
    scores: list[np.ndarray] = []
    seconds = 0.0
    for f in files:
        s, spent = run_detector(f, args.sensitivity, args.refractory)
        scores.append(s)
        seconds += spent
    points = sum(len(s) for s in scores)
    n_windows = sum(f.layout.n_windows for f in files)
    result = score_corpus([f.layout for f in files], scores)
    robust = split_half(files, scores)
    loco = leave_category_out(files, scores)

    print(f"NAB: {len(files)} files, {points} points, {n_windows} windows, from {root}")
    print(
        f"detector: sensitivity {args.sensitivity}, refractory {args.refractory}; "
        f"{1e6 * seconds / points:.2f} us per point"
    )
    print()
    print(
        f"{'profile':<20} {'normalized':>10} {'raw':>8} {'threshold':>9} {'split-half':>10}"
        f" {'LOCO':>6}"
    )
    for name, r in result.items():
        print(
            f"{name:<20} {r.normalized:>10.1f} {r.raw:>8.2f} {r.threshold:>9.4f}"
            f" {robust[name]:>10.1f} {loco[name]:>6.1f}"
        )
    print("split-half: thresholds fitted on every other file, scored on the rest, both ways")
    print("LOCO: thresholds fitted on the other categories, scored on each category in turn")
    print(
        "leave-one-category-out: "
        + " / ".join(f"{loco[name]:.1f}" for name in result)
        + " (standard / low FP / low FN)"
    )
    print()
    print(f"{'scoreboard (normalized)':<28} {'standard':>8} {'low FP':>7} {'low FN':>7}")
    ours = [r.normalized for r in result.values()]
    rows = [("ModelMonitor (this subset)", *ours), *PUBLISHED]
    for label, std, low_fp, low_fn in sorted(rows, key=lambda row: -row[1]):
        print(f"{label:<28} {std:>8.1f} {low_fp:>7.1f} {low_fn:>7.1f}")
    print("published scores are on all 58 NAB files; ours on the files above")
    if args.verbose:
        print()
        print(f"{'raw score per file':<58} " + " ".join(f"{SHORT[name]:>9}" for name in result))
        for f in files:
            per = " ".join(f"{r.per_file[f.key]:>9.3f}" for r in result.values())
            print(f"{f.key:<58} {per}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
