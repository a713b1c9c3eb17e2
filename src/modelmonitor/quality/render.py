"""A drift report as a text table (the CLI) or a self-contained HTML page."""

from __future__ import annotations

import datetime as dt
import html

from modelmonitor.quality.drift import FeatureDrift
from modelmonitor.quality.reports import ServiceDrift

__all__ = ["render_html", "render_table"]

_COLUMNS = (
    "feature",
    "kind",
    "method",
    "score",
    "drift",
    "psi",
    "js",
    "ks_p",
    "wasserstein",
    "chi2_p",
    "missing",
    "n",
)


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}"


def _cells(f: FeatureDrift, *, output: bool) -> list[str]:
    m = f.metrics

    def metric(name: str) -> str:
        found = m.get(name)
        if found is None:
            return "-"
        return _num(found.value) + (f"±{found.error:.2g}" if found.error else "")

    return [
        ("output:" if output else "") + f.name,
        f.kind,
        f.method.value,
        _num(f.score),
        "DRIFT" if f.drifted else "ok",
        metric("psi"),
        metric("jensenshannon"),
        metric("ks"),
        metric("wasserstein"),
        metric("chisquare"),
        f"{f.missing_rate:.1%}",
        str(f.current_count),
    ]


def _rows(result: ServiceDrift) -> list[list[str]]:
    report = result.report
    return [_cells(f, output=False) for f in report.features] + [
        _cells(f, output=True) for f in report.outputs
    ]


def render_table(result: ServiceDrift) -> str:
    report = result.report
    rows = [list(_COLUMNS), *_rows(result)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
    lines = [
        f"service {result.service}: drift score {report.drift_score:.2f} "
        f"({'DRIFT' if report.drifted else 'no dataset drift'}), "
        f"current {_when(result.start)} .. {_when(result.end)} ({report.current_rows} rows), "
        f"reference {result.reference} ({report.reference_rows} rows)",
    ]
    if result.drift_began_at is not None:
        lines.append(f"drift began at {_when(result.drift_began_at)}")
    for row in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines) + "\n"


def render_html(result: ServiceDrift) -> str:
    report = result.report
    esc = html.escape
    head = "".join(f"<th>{esc(c)}</th>" for c in _COLUMNS)
    body = "".join(
        ("<tr class='drift'>" if row[4] == "DRIFT" else "<tr>")
        + "".join(f"<td>{esc(cell)}</td>" for cell in row)
        + "</tr>"
        for row in _rows(result)
    )
    began = (
        f"<p>Drift began at {esc(_when(result.drift_began_at))}.</p>"
        if result.drift_began_at is not None
        else ""
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Drift report: {esc(result.service)}</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
        "tr.drift td{background:#fde2e2}</style></head><body>"
        f"<h1>Drift report: {esc(result.service)}</h1>"
        f"<p>Drift score {report.drift_score:.2f} "
        f"({'dataset drift' if report.drifted else 'no dataset drift'}); "
        f"current {esc(_when(result.start))} to {esc(_when(result.end))} "
        f"({report.current_rows} rows); reference {esc(result.reference)} "
        f"({report.reference_rows} rows).</p>{began}"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></body></html>"
    )
