"""Streaming anomaly detection for metric series, and NAB scoring to measure it.

- :mod:`modelmonitor.anomaly.detector`: :class:`AnomalyDetector`, one per series.
- :mod:`modelmonitor.anomaly.nab`: the Numenta Anomaly Benchmark scorer.
- :mod:`modelmonitor.anomaly.cli`: ``modelmonitor anomaly score FILE.csv``.
"""

from __future__ import annotations

from modelmonitor.anomaly.detector import AnomalyDetector, AnomalyResult

__all__ = ["AnomalyDetector", "AnomalyResult"]
