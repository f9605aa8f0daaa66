"""Intake's rules, free of I/O: tracking numbers, deadlines, what is not an appeal, notices."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from shared.errors import DomainError, Invalid, NotFound, WrongState

LOCAL = ZoneInfo("Asia/Shanghai")


# A citizen's phone as every channel takes it (REST, Open311, X-Citizen-Phone): digits, a
# leading + and spaces or dashes allowed, 6–20 characters (landlines with area code,
# mobiles, 12345's forms).
PHONE_PATTERN = r"^\+?[0-9][0-9 -]{5,19}$"

def tracking_number(prefix: str, at: datetime, sequence: int) -> str:
    """XC-20261122-000123: region prefix, the local (Beijing) date, a sequence number."""
    return f"{prefix}-{at.astimezone(LOCAL):%Y%m%d}-{sequence % 1_000_000:06d}"


def accept_deadline(received_at: datetime, within_hours: float) -> datetime:
    return received_at + timedelta(hours=within_hours)


def acceptance_notice(tracking_no: str, title: str) -> str:
    """受理告知: what the citizen is told when the appeal is accepted."""
    return f"您反映的“{title}”已受理，受理编号 {tracking_no}。我们将尽快办理并答复您，可凭编号查询进度。"


@dataclass(frozen=True)
class Rejection:
    """不予受理: never silent — a code for statistics and words the citizen understands."""

    code: str
    reason: str


# Matters the appeal system does not handle, with where the citizen should go instead.
# Patterns are deliberately narrow: when in doubt the appeal is accepted and triaged by a person.
_OUT_OF_SCOPE: tuple[tuple[str, re.Pattern[str], str], ...] = (
    (
        "in_litigation",
        re.compile(r"(已经?起诉|法院(已经?)?(立案|受理|判决)|正在诉讼|仲裁中)"),
        "该事项已进入诉讼或仲裁程序，依法由法院或仲裁机构处理，不属于本平台受理范围。",
    ),
    (
        "not_an_appeal",
        re.compile(r"^\s*(测试|test|广告|推广|加微信|代开发票)", re.IGNORECASE),
        "您提交的内容不是具体诉求，未予受理。如有需要反映的事项，请重新描述具体情况。",
    ),
)


def screen(title: str, description: str) -> Rejection | None:
    """Is this out of scope or not an appeal at all? None means accept."""
    text = f"{title}\n{description}"
    for code, pattern, reason in _OUT_OF_SCOPE:
        if pattern.search(text):
            return Rejection(code, reason)
    return None


def rejection_notice(tracking_no: str, rejection: Rejection) -> str:
    return f"您的诉求（编号 {tracking_no}）未予受理：{rejection.reason}"


def grid_report_refusal(worker_township: str | None, place_township: str | None, *, solved_on_spot: bool) -> str | None:
    """Why a grid worker's report (网格员上报) is refused, or None.

    It counts for the worker's score, and one solved on the spot (小事不出网格) closes itself
    at grid level, so it must be of the worker's own township: a place located in another
    township is refused, and a matter solved on the spot must be placed in the worker's
    township at all. The township rather than the grid: an address often places a matter
    only to its village or township, and a matter met on patrol in a neighbouring grid of
    the same township is still the township's to solve."""
    if place_township is not None and place_township != worker_township:
        return f"a grid worker reports matters of their own township ({worker_township}), not of {place_township}"
    if solved_on_spot and place_township is None:
        return f"a matter solved on the spot must be placed in the worker's own township ({worker_township})"
    return None


# Who files on each channel through POST /api/v1/appeals. The citizen's own channels are
# open to anyone; 12345's tickets come only by its signed push (POST /api/v1/hotline/tickets),
# a grid worker's report only signed in as that worker, a window registration only by the
# village staff who take it (五事 window) — so nobody can pass an appeal off as another
# channel's, whose cases are counted, answered and scored differently.
CHANNEL_FILERS: dict[str, frozenset[str] | None] = {
    "app": None, "wechat": None, "mailbox": None,
    "hotline": frozenset(), "grid": frozenset({"grid_worker"}), "window": frozenset({"village_staff"}),
}  # fmt: skip


def channel_refusal(channel: str, role: str | None) -> str | None:
    """Why ``role`` (None: not signed in) may not file on ``channel``, or None."""
    filers = CHANNEL_FILERS.get(channel, frozenset())
    if filers is None or (role is not None and role in filers):
        return None
    if not filers:
        return f"channel {channel} is filed only by 12345's signed push (POST /api/v1/hotline/tickets)"
    who = ", ".join(sorted(filers))
    return f"channel {channel} is filed only signed in as {who}; a citizen files on app, wechat or mailbox"


# 首问负责制 (docs/rules.md): the unit that first learns of an appeal answers for getting it
# done (办结) and is held to account (被问责), whoever handles it later. Who "first learns" is
# read off what intake knows when the appeal comes in:
# - filed by staff signed in (a grid worker's report, a window registration, a department or
#   centre taking it down): the filer's own unit — a grid worker's village, since a grid is
#   the village's (网格 belongs to 村/社区), not a unit that is held to account;
# - a 12345 ticket: the command centre (综治中心) of the county the ticket is placed in, which
#   runs the hotline's dispatching there;
# - a citizen's own channel (app, mini-program, mailbox, Open311): the place's own unit, the
#   village (社区) when the place is known to it, else the township; None when placed nowhere
#   (the centre triaging it then sends it on).
STAFF_FILER_ROLES = frozenset({
    "grid_worker", "village_staff", "township_staff", "township_head", "dept_clerk", "dept_head",
    "centre_dispatcher", "centre_supervisor",
})  # fmt: skip


def first_responsible_unit(
    org, *, channel: str, filer_role: str | None, filer_unit: str | None,
    county: str | None, township: str | None, village: str | None,
) -> str | None:  # fmt: skip
    """The first-responsible unit of a new appeal (see the rule above); ``org`` is the
    directory (``shared.orgdata.OrgDirectory``)."""
    if filer_role in STAFF_FILER_ROLES and filer_unit and org.has_unit(filer_unit):
        unit = org.unit(filer_unit)
        return unit.parent if unit.kind == "grid" and unit.parent else unit.code
    if channel == "hotline":
        return org.centre_of(county) if county and org.has_unit(county) else None
    for code in (village, township):
        if code and org.has_unit(code):
            return code
    return None


# 谁接待、谁负责 (docs/rules.md): a walk-in (window) appeal is owned by the person who received
# it. A simple one runs on the 1-hour clock (1小时诉求服务模式, ``shared.deadlines``) and is
# closed on the spot by that person with the citizen present, who rates it there. A citizen
# not satisfied at the window has not had the matter solved on the spot: it stays open, for
# the township or the centre to hand on (dispatch by hand), rather than being closed and redone.
ON_SPOT_RATINGS = frozenset({"满意", "基本满意"})


def on_spot_refusal(
    *, case_id: str, channel: str, status: str, received_by: str | None, actor_id: str, simple: bool,
    handled_by_unit: bool, rating: str,
) -> DomainError | None:
    """Why this close on the spot is refused, or None: not found for anyone but the receiver
    (the appeal is not theirs to close), the wrong state for an appeal not in the 1-hour mode,
    no longer open or already sent to a unit, an invalid rating for an unsatisfied citizen.

    Only a simple appeal (1小时诉求服务模式) is closed on the spot: one that is not simple goes
    to a unit by the catalogue as soon as it is filed, so letting the window close it too would
    race the dispatch that intake learns of only later."""
    if channel != "window" or received_by is None or received_by != actor_id:
        # Only the person who received this window appeal closes it on the spot (谁接待、谁负责).
        return NotFound(f"no appeal {case_id} received by you", code="not-found")
    if status in ("rejected", "merged", "closed", "rated"):
        return WrongState(f"the appeal is {status}; nothing to close", state=status)
    if not simple:
        return WrongState("only a simple appeal (1小时诉求服务模式) is closed on the spot; this one goes to a unit by the catalogue",
                          state=status)  # fmt: skip
    if handled_by_unit:
        return WrongState("the appeal has been sent to a unit, which answers it now", state=status)
    if rating not in ON_SPOT_RATINGS:
        return Invalid("a citizen not satisfied at the window has not had it solved on the spot: hand it on instead", field="rating")
    return None
