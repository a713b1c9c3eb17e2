"""``modelmonitor drift``: references from a training CSV, reports as a table, JSON and HTML."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np

from modelmonitor.demo.tabular import feature_names, traffic_rows, training_rows
from modelmonitor.events import EventBatch, EventIdFactory, PayloadSample, RequestEvent
from modelmonitor.quality.config import SamplingConfig
from modelmonitor.quality.processor import QualityProcessor
from modelmonitor.quality.store import create_quality_store
from tests.helpers import proxy_stats
from tests.integration.test_cli import run


def write_training_csv(path: Path) -> None:
    rows, labels = training_rows()
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*feature_names(), "target"])
        writer.writeheader()
        for row, label in zip(rows, labels, strict=True):
            writer.writerow({**row, "target": label})


async def sample_traffic(data_dir: Path) -> None:
    store = create_quality_store(f"sqlite:///{data_dir / 'modelmonitor.db'}")
    await store.connect()
    processor = QualityProcessor(store=store, services={"wine": SamplingConfig(rate=1.0)})
    ids, rng, now = EventIdFactory(), np.random.default_rng(5), time.time()
    events, samples = [], []
    for i in range(60):
        rows = traffic_rows(
            20,
            rng=rng,
            shift={"magnesium": 1.5},
            channel_shares={"web": 0.2, "app": 0.2, "partner": 0.6},
        )
        event = RequestEvent(
            ids(),
            now - 600 + i,
            "wine",
            "POST",
            "/invocations",
            "/invocations",
            200,
            0.01,
            0.01,
            1,
            1,
        )
        body = {"dataframe_records": rows}
        events.append(event)
        samples.append(PayloadSample(event.id, json.dumps(body).encode(), b'{"predictions": [1]}'))
    await processor(EventBatch(proxy_stats(), events, samples))
    await processor.flush()
    await store.close()


async def test_reference_upload_and_reports(tmp_path: Path) -> None:
    training = tmp_path / "train.csv"
    write_training_csv(training)
    await sample_traffic(tmp_path)
    data = ("--data-dir", str(tmp_path), "--service", "wine")

    stored = run("drift", "reference", *data, "--name", "training", str(training))
    assert stored.returncode == 0, stored.stderr
    assert "stored reference 'training' for 'wine' (file)" in stored.stdout

    as_json = run(
        "drift",
        "report",
        *data,
        "--reference",
        "training",
        "--current=-1h..now",
        "--format",
        "json",
    )
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)["report"]
    assert report["reference_rows"] == 178 and report["current_rows"] == 1200
    drifted = {f["name"] for f in report["features"] if f["drifted"]}
    assert {"magnesium", "channel"} <= drifted
    methods = {f["name"]: f["method"] for f in report["features"]}
    assert methods["magnesium"] == "ks" and methods["channel"] == "chisquare"  # 178 reference rows

    table = run("drift", "report", *data, "--reference", str(training), "--current=-1h..now")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].startswith("service wine: drift score")
    assert any(line.startswith("magnesium") and "DRIFT" in line for line in lines)
    assert any(line.split()[:1] == ["feature"] for line in lines)

    html = run("drift", "report", *data, "--reference", "training", "--format", "html")
    assert html.returncode == 0 and html.stdout.startswith("<!doctype html>")


def test_bad_input_is_one_line_and_non_zero(tmp_path: Path) -> None:
    data = ("--data-dir", str(tmp_path), "--service", "wine")
    cases = [
        (("drift", "report", *data, "--current", "yesterday"), 2, "--current"),
        (("drift", "report", *data, "--reference", "nope"), 1, "no reference 'nope'"),
        (("drift", "reference", *data, "--name", "t", str(tmp_path / "missing.csv")), 2, "FILE"),
        (("drift", "reference", *data, "--name", "t"), 2, "FILE or --range"),
    ]
    empty = tmp_path / "empty.csv"
    empty.write_text("a,b\n")
    cases.append((("drift", "reference", *data, "--name", "t", str(empty)), 2, "no data rows"))
    for argv, code, words in cases:
        result = run(*argv)
        assert result.returncode == code, (argv, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert words in result.stderr, result.stderr
