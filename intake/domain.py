"""Intake's rules, free of I/O."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

LOCAL = ZoneInfo("Asia/Shanghai")


def tracking_number(prefix: str, at: datetime, sequence: int) -> str:
    """XC-20261122-000123: region prefix, the local (Beijing) date, a daily sequence."""
    return f"{prefix}-{at.astimezone(LOCAL):%Y%m%d}-{sequence:06d}"


def accept_deadline(received_at: datetime, within_hours: float) -> datetime:
    return received_at + timedelta(hours=within_hours)


def acceptance_notice(tracking_no: str, title: str) -> str:
    """受理告知: what the citizen is told when the appeal is accepted."""
    return f"您反映的“{title}”已受理，受理编号 {tracking_no}。我们将尽快办理并答复您。"
