"""Plain-text rendering of notifications, shared by the channels that send text
(email, Apprise) and the timestamps Slack shows."""

from __future__ import annotations

from datetime import UTC, datetime

from modelmonitor.alerts.models import AlertNotice, Notification

__all__ = ["notice_lines", "plain_text", "when"]


def when(at: float | None) -> str:
    if at is None:
        return "-"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def notice_lines(notice: AlertNotice) -> list[str]:
    lines = [f"{notice.status.upper()}: {notice.rule_name} [{notice.severity}]"]
    if notice.route:
        lines.append(f"  route:     {notice.route}")
    if notice.metric is not None and notice.kind == "anomaly":
        value = "n/a" if notice.value is None else f"{notice.value:.6g}"
        lines.append(
            f"  condition: anomaly score of {notice.metric} >= {notice.threshold or 0:.3g} "
            f"within {notice.window}"
        )
        lines.append(f"  value:     {value}")
    elif notice.metric is not None:
        value = "n/a" if notice.value is None else f"{notice.value:.6g}"
        lines.append(
            f"  condition: {notice.metric} {notice.comparator} {notice.threshold:g} "
            f"over {notice.window}"
        )
        lines.append(f"  value:     {value}")
    lines.append(f"  since:     {when(notice.starts_at)}")
    if notice.status == "resolved":
        lines.append(f"  resolved:  {when(notice.ends_at)}")
    if notice.summary:
        lines.append(f"  summary:   {notice.summary}")
    if notice.labels:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(notice.labels.items()))
        lines.append(f"  labels:    {labels}")
    return lines


def plain_text(notification: Notification) -> str:
    """The body of an email or chat message: every alert, then the notification id."""
    lines = [f"Service: {notification.service}", ""]
    for notice in notification.alerts:
        lines.extend(notice_lines(notice))
        lines.append("")
    lines.append(f"Notification {notification.id} from ModelMonitor.")
    return "\n".join(lines)
