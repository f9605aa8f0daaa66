"""The case-lifecycle event contract: one versioned, discriminated union for the whole loop.

信息归集 → 流转交办 → 处理反馈 → 督查督办 → 核查结案 → 考核评价

Every event shares one envelope (id, type, schema version, case id, time, producer,
causation, correlation, actor) and carries a typed ``payload``. The union is what every
service decodes; ``shared/schema/case-lifecycle.schema.json`` is generated from it and
checked in, and ``shared/schema/published/`` keeps every published version so a change
that would break an old reader fails the compatibility test.

Rules for changing this file (the compatibility test enforces them):
- add event types and *optional* fields freely;
- never remove or retype a field, never make an optional field required, never remove a type;
- a breaking change needs a new ``SCHEMA_VERSION`` and a new published snapshot.

Personal data never travels here in clear: phones are masked (``138****8000``) and
addresses are cut to the street (see ``shared.privacy``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, TypeVar, Union

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

SCHEMA_VERSION = 1
TOPIC = "case-lifecycle"


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Model(BaseModel):
    # Unknown fields are ignored on read so that an older service can read events
    # written by a newer producer (forward compatibility).
    model_config = ConfigDict(extra="ignore", frozen=True)


# --------------------------------------------------------------------------- vocab


class Role(StrEnum):
    citizen = "citizen"
    grid_worker = "grid_worker"
    village_staff = "village_staff"
    township_staff = "township_staff"
    township_head = "township_head"
    dept_clerk = "dept_clerk"
    dept_head = "dept_head"
    centre_dispatcher = "centre_dispatcher"
    centre_supervisor = "centre_supervisor"
    auditor = "auditor"
    ops = "ops"
    system = "system"  # a service acting on its own (timers, automatic dispatch)


class Channel(StrEnum):
    app = "app"
    wechat = "wechat"
    hotline = "hotline"
    grid = "grid"
    window = "window"
    mailbox = "mailbox"
    open311 = "open311"
    task = "task"  # 自上而下的任务: an item of a task the centre sent down (ReceivedData.task), not a citizen's appeal


class FiveMatters(StrEnum):
    """五事: the five kinds of matter the practice sorts appeals into."""

    worry = "操心事"
    annoyance = "烦心事"
    anxiety = "揪心事"
    emergency = "急难事"
    hope = "期盼事"


class Urgency(StrEnum):
    normal = "normal"
    urgent = "urgent"
    emergency = "emergency"


class ResolutionClass(StrEnum):
    """Deadline class of a dispatch order: consultation 1–3, general 5, complex 15 working days."""

    consultation = "consultation"
    general = "general"
    complex = "complex"
    long_cycle = "long_cycle"


class Satisfaction(StrEnum):
    satisfied = "满意"
    basically_satisfied = "基本满意"
    unsatisfied = "不满意"


class ClockKind(StrEnum):
    accept = "accept"
    dispatch = "dispatch"
    sign = "sign"
    first_contact = "first_contact"
    resolve = "resolve"
    return_window = "return_window"
    verify = "verify"
    callback = "callback"
    survey = "survey"  # 现场勘查: an on-site order's survey, due on dispatch's deadline
    # 预警信息处置: an early warning's 签收 and 处置 deadlines, insight's (carried on warning.*);
    # their thresholds are written as sla.warning_signal, never as the case-scoped sla.*.
    warning_acknowledge = "warning_acknowledge"
    warning_handle = "warning_handle"


# --------------------------------------------------------------------------- envelope


class Actor(_Model):
    """Who did it: a person with a role in an org unit, or a service (role ``system``)."""

    id: str = Field(min_length=1, max_length=128)
    role: Role
    org_unit: str | None = Field(default=None, max_length=64, description="org directory unit code")


class Location(_Model):
    """Where the matter is; never more precise than the street in an event (PIPL)."""

    county: str | None = Field(
        default=None, max_length=64,
        description="the county the matter belongs to, said where no finer place says it (a department's task item lies "
        "in no township: the issuing centre's county); else it is the township's (grid's). Absent in older events",
    )
    township: str | None = None
    village: str | None = None
    grid: str | None = None
    street: str | None = Field(default=None, description="address cut to the street")
    lat: float | None = Field(default=None, ge=-90, le=90)
    lng: float | None = Field(default=None, ge=-180, le=180)


class EventBase(_Model):
    """The envelope every lifecycle event carries."""

    # Subclasses set this False when an event is not about a single case (grid activity).
    case_scoped: ClassVar[bool] = True

    id: uuid.UUID = Field(default_factory=uuid.uuid4, description="event id, unique forever")
    type: str
    schema_version: int = SCHEMA_VERSION
    case_id: str | None = Field(default=None, max_length=64, description="the case this event is about")
    occurred_at: AwareDatetime = Field(default_factory=utcnow)
    producer: str = Field(min_length=1, max_length=32, description="service that wrote the event")
    causation_id: uuid.UUID | None = Field(default=None, description="the event that caused this one")
    correlation_id: uuid.UUID | None = Field(default=None, description="the first event of the chain")
    actor: Actor

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _case_scoped_needs_case_id(self) -> EventBase:
        if self.case_scoped and not self.case_id:
            raise ValueError(f"{self.type} needs a case_id")
        return self

    @property
    def partition_key(self) -> str:
        """Kafka message key: all events of a case land on one partition, in order."""
        return self.case_id or self.subject_key()

    def subject_key(self) -> str:  # overridden by events that are not case-scoped
        return str(self.id)


# --------------------------------------------------------------------------- payloads
# One payload model per event type. Fields only ever get added (optional) — see module doc.

# Every service that keeps the tracking number stores it in 32 characters (intake, dispatch,
# scoring, notify); intake writes 20 at most (``XC-20261122-000123``, a prefix of ≤ 4). A
# longer one is refused where the event is made or read, never truncated or failing an
# insert downstream.
TRACKING_NO_MAX_LENGTH = 32
#: An attachment id as intake gives it (``POST /api/v1/attachments``): "att_" and 32 hex
#: digits, random, so an id tells nothing about the file. Made here (``new_attachment_id``)
#: and checked here, so the service that issues ids and the services that take them as
#: references (a survey's photos) agree on one form.
ATTACHMENT_ID_PATTERN = r"^att_[0-9a-f]{32}$"
AttachmentId = Annotated[
    str, Field(pattern=ATTACHMENT_ID_PATTERN, min_length=36, max_length=36,
               description="an attachment's id from intake's POST /api/v1/attachments, e.g. att_3f2a…(32 hex digits)"),
]  # fmt: skip


def new_attachment_id() -> str:
    """A fresh attachment id of the one form ``AttachmentId`` checks."""
    return f"att_{uuid.uuid4().hex}"


TrackingNo = Annotated[
    str, Field(min_length=1, max_length=TRACKING_NO_MAX_LENGTH, description="human tracking number, e.g. XC-20261122-000123")
]


class TaskRef(_Model):
    """自上而下的任务: the task item a case stands for. The centre's task has one item per place or
    unit; each enters the lifecycle as a case of its own, sent straight to the item's unit
    (no catalogue guess), on the same clocks, cards and urging as an appeal, but counted apart
    and with no citizen (no callback, no rating)."""

    task_id: str = Field(min_length=1, max_length=64, description="the task (insight's tasks table)")
    item_no: int = Field(ge=1, description="the item's number within its task")
    unit: str = Field(min_length=1, max_length=64, description="the unit the item is for: dispatch sends it there")
    resolution_class: ResolutionClass = Field(
        default=ResolutionClass.general, description="the item's deadline class: its order's resolve deadline counts from it"
    )
    issued_by: str | None = Field(default=None, max_length=64, description="the centre that issued the task")


class ReceivedData(_Model):
    tracking_no: TrackingNo
    channel: Channel
    title: str
    description: str
    category: FiveMatters | None = None
    subject_class: str | None = None
    location: Location | None = None
    contact_masked: str | None = Field(default=None, description="phone masked, e.g. 138****8000")
    citizen_ref: str | None = Field(default=None, description="keyed hash of the phone, for 'my appeals'")
    reporter_id: str | None = Field(default=None, description="grid worker who reported it")
    external_ref: str | None = Field(default=None, description="12345 ticket number or Open311 token")
    attachments: list[str] = Field(default_factory=list)
    solved_on_spot: bool = Field(default=False, description="小事不出网格: closed at grid level")
    accept_due_at: AwareDatetime | None = None
    contact_sealed: str | None = Field(
        default=None, description="the phone sealed with the contact key ring (shared.contact), for notify only"
    )
    first_unit: str | None = Field(
        default=None, max_length=64,
        description="首问负责制: the unit that first learned of the appeal (intake.domain.first_responsible_unit); it "
        "answers for getting it done and is held to account, whoever handles it later. Absent in older events",
    )
    first_unit_name: str | None = Field(default=None, description="that unit's name in the org directory")
    received_by: str | None = Field(
        default=None, max_length=128,
        description="谁接待、谁负责: the person who received a walk-in (window) appeal and owns it",
    )
    resolve_due_at: AwareDatetime | None = Field(
        default=None,
        description="1小时诉求服务模式: a simple window appeal's resolve deadline, computed once by intake (shared.deadlines)",
    )
    task: TaskRef | None = Field(
        default=None, description="自上而下的任务: the task item this case is (channel task); absent for an appeal"
    )


class AcceptedData(_Model):
    tracking_no: TrackingNo
    notice: str = Field(description="受理告知 text sent to the citizen")


class RejectedData(_Model):
    reason_code: str
    reason: str = Field(description="a reason the citizen understands (不予受理)")


class Routing(_Model):
    """Why intake proposed the subject: what a dispatcher who overrides it needs to see."""

    words: list[str] = Field(default_factory=list, max_length=10, description="the n-grams that weighed most for the subject")
    probability: float = Field(ge=0, le=1, description="the model's calibrated probability of the subject")
    model_version: str = Field(max_length=32, description='"demo" (the shipped examples) or "v<n>" (a promoted retraining)')
    catalogue_matter: str | None = Field(default=None, description="事项 of the catalogue line that owns the subject here")
    catalogue_owner: str | None = Field(default=None, description="the owner that line names (a unit code or \"township\")")


class TriagedData(_Model):
    category: FiveMatters
    subject_class: str
    urgency: Urgency = Urgency.normal
    location: Location | None = None
    confidence: float = Field(ge=0, le=1)
    manual: bool = False
    region: str | None = Field(default=None, description="county code the case belongs to")
    routing: Routing | None = Field(default=None, description="why the model proposed the subject (absent on a manual triage)")


class MergedData(_Model):
    into_case_id: str = Field(description="the open case that now handles this matter (并单)")
    distance_m: float | None = None
    similarity: float | None = None


class DispatchedData(_Model):
    order_no: str = Field(description="交办单 number")
    unit: str
    unit_name: str | None = None
    resolution_class: ResolutionClass = ResolutionClass.general
    instructions: str | None = None
    role: Literal["sole", "lead", "co"] = "sole"
    automatic: bool = False
    redo_round: int = 0
    due_at: AwareDatetime | None = Field(
        default=None, description="the order's resolve deadline (办理时限), computed once by dispatch (shared.deadlines)"
    )
    return_due_at: AwareDatetime | None = Field(
        default=None, description="end of the return window (退单), computed once by dispatch; absent in older events"
    )
    handover: int = Field(
        default=0, ge=0, description="上报 / 下派 before this order in its round (0: none; absent in older events): a unit "
        "handed the same case again gets clocks of its own"
    )
    survey_due_at: AwareDatetime | None = Field(
        default=None, description="现场勘查: when the unit must have surveyed on site, computed once by dispatch "
        "(shared.deadlines) for a matter on site; absent: no survey clock"
    )


class SignedData(_Model):
    order_no: str
    unit: str
    claimed: bool = Field(default=False, description="认领: a village took the matter as its own (its 签收); absent in older events")


class ReturnedData(_Model):
    order_no: str
    unit: str
    reason_code: str
    reason: str
    suggested_unit: str | None = None


class ReturnReviewedData(_Model):
    order_no: str
    unit: str
    upheld: bool = Field(description="upheld → re-dispatched; rejected → back to the unit")
    comment: str | None = None
    redispatch_to: str | None = None


class CountyCalledData(_Model):
    """乡呼县应: a township calls county departments on a case it cannot solve."""

    call_id: str
    township: str
    township_name: str | None = Field(default=None, description="the calling township's name in the org directory, e.g. 通挽镇")
    units: list[str] = Field(min_length=1)
    reason: str
    respond_within_minutes: int = 60
    respond_by: AwareDatetime | None = Field(default=None, description="when the called units must have responded "
                                             "(shared.deadlines.response_due); None on events written before the field")


class WhistleBlownData(_Model):
    """吹哨报到: several departments must report; one leads, the others co-handle. The whistle
    is blown by the case's township, or from below (网格吹哨、部门报到) by the village or the
    grid the case is in (``blown_by``)."""

    call_id: str
    township: str = Field(description="the case's township, which verifies what the departments answer")
    township_name: str | None = Field(default=None, description="the township's name in the org directory")
    blown_by: str | None = Field(default=None, description="who blew the whistle: the township, a village or a grid "
                                 "(None on events written before the field: the township)")
    blown_by_name: str | None = Field(default=None, description="its name in the org directory, e.g. 江龙村")
    lead_unit: str
    lead_unit_name: str | None = Field(default=None, description="the lead unit's name in the org directory")
    co_units: list[str] = Field(default_factory=list)
    reason: str
    respond_within_minutes: int = 30
    respond_by: AwareDatetime | None = Field(default=None, description="when the called units must have reported (报到; "
                                             "shared.deadlines.response_due); None on events written before the field")


class ReportedUpData(_Model):
    """上报: a village cannot solve the matter within its means and sends it up to its township,
    with a reason; its order ends and the township gets one of its own (case.dispatched)."""

    order_no: str = Field(description="the village's order, which ends")
    village: str
    village_name: str | None = None
    township: str
    township_name: str | None = None
    reason: str
    new_order_no: str | None = Field(default=None, description="the township's new order")


class PassedDownData(_Model):
    """下派: the township sends a matter back down to one of its villages, with a reason; its
    order ends and the village gets one of its own (case.dispatched)."""

    order_no: str = Field(description="the township's order, which ends")
    township: str
    township_name: str | None = None
    village: str
    village_name: str | None = None
    reason: str
    new_order_no: str | None = Field(default=None, description="the village's new order")


class SurveyedData(_Model):
    """现场勘查: the order's unit surveyed on site — a step of its own, with photos."""

    order_no: str
    unit: str
    findings: str = Field(description="what the survey found (勘查情况)")
    attachments: list[str] = Field(
        default_factory=list, description="photos: intake's attachment ids, unchecked (the first form of this event; "
        "still written, the same ids as ``photos``, for readers that know only this field)"
    )
    photos: list[AttachmentId] = Field(
        default_factory=list, description="photos of the site as typed references (AttachmentId: checked ids of intake's "
        "attachments; at least one on a survey recorded since it was added, absent on older events)"
    )
    due_at: AwareDatetime | None = Field(
        default=None, description="the order's resolve deadline after the survey (the work's limit counts from it), "
        "computed once by dispatch (shared.deadlines)"
    )


class WorkPlanFiledData(_Model):
    """施工图: measures, deadline, responsible person."""

    order_no: str
    unit: str
    measures: str
    planned_finish_at: AwareDatetime
    responsible: str
    contact_masked: str | None = None


class ProgressReportedData(_Model):
    order_no: str
    unit: str
    note: str
    percent: int | None = Field(default=None, ge=0, le=100)
    attachments: list[str] = Field(default_factory=list)
    first_contact: bool = Field(default=False, description="this report is the first contact with the citizen")
    co_handler_part_done: bool = False


class ExtensionRequestedData(_Model):
    order_no: str
    unit: str
    request_id: str
    working_days: int = Field(gt=0, le=180)
    reason: str
    long_cycle: bool = False


class ExtensionApprovedData(_Model):
    order_no: str
    unit: str
    request_id: str
    working_days: int = Field(gt=0, le=180)
    new_due_at: AwareDatetime | None = Field(default=None, description="the order's new deadline, computed by dispatch")


class DeadlineMovedData(_Model):
    """A holiday table loaded after the order opened changed the working days in its window:
    dispatch, which owns the order's deadlines, counted this one again on the new calendar."""

    order_no: str
    unit: str
    clock: Literal["resolve", "return_window", "survey"] = Field(description="which of the order's deadlines moved")
    old_due_at: AwareDatetime
    new_due_at: AwareDatetime = Field(description="the deadline counted again by dispatch; SLA's clock takes it as is")
    reason: str = Field(max_length=200, description='why it moved, e.g. "holiday table 2031"')


class ExtensionDeniedData(_Model):
    order_no: str
    unit: str
    request_id: str
    reason: str


class SuspendedData(_Model):
    """Clock paused: waiting on the citizen, or an approved suspension."""

    reason: str
    unit: str | None = None


class ResumedData(_Model):
    unit: str | None = None
    due_at: AwareDatetime | None = Field(
        default=None, description="the order's deadline moved by the time suspended, computed by dispatch; absent in older events"
    )


class ResolvedData(_Model):
    order_no: str
    unit: str
    answer: str = Field(description="答复 to the citizen")
    solved: bool = Field(default=True, description="解决 (true) or answered without solving")


class VerifiedData(_Model):
    verifier_unit: str
    comment: str | None = None


class VerificationFailedData(_Model):
    verifier_unit: str
    reason: str
    order_no: str | None = None
    unit: str | None = None


class ClosedData(_Model):
    """销号、公示: closed and published (personal data masked in the public notice)."""

    public_summary: str
    published: bool = True
    unreachable: bool = False


class CallbackCompletedData(_Model):
    """回访 by an operator: reached with a rating, or given up as unreachable."""

    reached: bool
    attempt: int = Field(ge=1)
    rating: Satisfaction | None = None
    comment: str | None = None
    round: int = 0


class RatedData(_Model):
    """The citizen's rating for one round; for a redo only the later round counts."""

    rating: Satisfaction
    round: int = 0
    source: Literal["callback", "app", "wechat", "hotline", "questionnaire", "window"] = Field(
        default="callback", description="window: taken at the walk-in window with the citizen present (谁接待、谁负责)"
    )
    comment: str | None = None
    units: list[str] = Field(default_factory=list, description="units that handled this round")


class ReopenedData(_Model):
    """重办: unsatisfied rating or failed verification sends the case back."""

    reason: str
    redo_round: int = Field(ge=1)
    unit: str | None = None
    due_at: AwareDatetime | None = Field(
        default=None, description="the redo order's resolve deadline, computed by dispatch; absent in older events"
    )


class SlaWarningData(_Model):
    """Yellow card (黄牌) or an earlier threshold warning."""

    clock_id: str
    clock: ClockKind
    unit: str | None = None
    due_at: AwareDatetime
    threshold: str = Field(description="e.g. 'yellow', '50%', '75%'")
    level: Literal["info", "yellow"] = "yellow"


class SlaBreachedData(_Model):
    """Red card (红牌): the deadline passed."""

    clock_id: str
    clock: ClockKind
    unit: str | None = None
    due_at: AwareDatetime


class SlaUrgedData(_Model):
    """催办: repeated while overdue."""

    clock_id: str
    clock: ClockKind
    unit: str | None = None
    overdue_working_days: int = Field(ge=0)
    sequence: int = Field(ge=1)


class SlaEscalatedData(_Model):
    """督办: escalated to supervision."""

    reason: Literal["overdue", "redo_limit", "lead_dispute"]
    clock_id: str | None = None
    unit: str | None = None
    detail: str | None = None


class UnitRatedData(_Model):
    """Two-way evaluation: township rates a department it called, or the department rates the call."""

    rater_unit: str
    rated_unit: str
    direction: Literal["township_rates_department", "department_rates_call"]
    call_id: str | None = None
    round: int = 0
    rating: Satisfaction | None = None
    score: int | None = Field(default=None, ge=1, le=5)
    justified: bool | None = None
    complete: bool | None = None
    comment: str | None = None


class GridActivityData(_Model):
    """One piece of a grid worker's work. ``visit``: a visit to a household of the grid's
    register (入户走访; detail: household_ref, whether it is flagged 困难/重点监测);
    ``mailbox_opened``: the grid's mailbox opened (定时开箱取信; detail: letters);
    ``proxy_service``: a service done for a resident on the spot (帮办代办; detail: the
    catalogue item and its class)."""

    worker_id: str
    grid: str
    kind: Literal[
        "login", "info_update", "report", "patrol", "event_handled", "solved_on_spot",
        "visit", "mailbox_opened", "proxy_service",
    ]  # fmt: skip
    count: int = Field(default=1, ge=1)
    detail: dict[str, Any] = Field(default_factory=dict)


class GridWarningData(_Model):
    """A grid duty missed in a period: a flagged household not visited in the month
    (``visit_missed``, subject the household ref) or a scheduled mailbox opening not made
    (``mailbox_missed``, subject the day). Told to the grid (its worker) and its village or
    community."""

    kind: Literal["visit_missed", "mailbox_missed"]
    grid: str
    village: str | None = Field(default=None, description="the grid's village or community (社区), told too")
    township: str | None = None
    worker_id: str | None = Field(default=None, description="the household's keeper, when one is assigned")
    subject: str = Field(min_length=1, max_length=64, description="household ref, or the day (YYYY-MM-DD) of a missed opening")
    period: str = Field(pattern=r"^\d{4}-\d{2}$", description="the month checked, YYYY-MM")


HotspotKind = Literal["rising", "same_spot", "persistent_unit"]


class HotspotDetectedData(_Model):
    """未诉先办: a pattern insight found in the appeals, with the evidence a person can check.

    ``rising``: an area's appeals of one subject class in the last working days above what its
    own history predicts (Poisson tail); ``same_spot``: the same spot (village/grid and street)
    reported again and again (new appeals, merges, redo rounds); ``persistent_unit``: a unit whose
    appeals of one class stayed high month after month (反映同类问题居高不下)."""

    finding_id: str = Field(max_length=64, description="stable id of the finding (insight's findings table)")
    kind: HotspotKind
    level: Literal["grid", "village", "township", "unit"] = Field(description="what ``area`` names")
    area: str = Field(max_length=64, description="org code of the grid, village or township, or the unit's code")
    county: str | None = Field(default=None, max_length=64)
    township: str | None = Field(default=None, max_length=64)
    street: str | None = Field(default=None, description="the spot's street (same_spot), cut to the street (PIPL)")
    subject_class: str
    unit: str | None = Field(default=None, description="the unit that handles these appeals, when known: its head is warned")
    centre: str | None = Field(default=None, description="the county's command centre (综治中心), warned with the unit")
    window_start: date = Field(description="first local day (Asia/Shanghai) of the evidence window")
    window_end: date = Field(description="last local day of the evidence window")
    window_workdays: int = Field(ge=1, description="working days in the window (shared.workdays)")
    count: int = Field(ge=0, description="appeals (and repeats) in the window")
    baseline: float = Field(ge=0, description="what the area's own history predicts for the window")
    score: float = Field(ge=0, description="-log10 of the Poisson tail probability (rising), or count ÷ threshold")
    case_ids: list[str] = Field(default_factory=list, max_length=500, description="the cases that make the evidence")
    explanation: str = Field(description="the finding in one Chinese sentence, for the people warned")

    @property
    def warned_unit(self) -> str | None:
        return warned_unit(self.unit, self.township)


def warned_unit(unit: str | None, township: str | None) -> str | None:
    """The unit a finding warns (预警提醒: its head is told, and it handles the warning): the unit
    that handles these appeals, else the township of the place (no order has named a unit yet)."""
    return unit or township


WarningState = Literal["open", "acknowledged", "handled", "closed"]


class WarningStepData(_Model):
    """预警信息处置: one step of an early warning handled like a case. A finding that warns a
    unit opens a warning (``warning.opened``); the unit's head or staff acknowledges it (签收,
    ``warning.acknowledged``) and reports what was done (处置, ``warning.handled``); the centre
    closes it (``warning.closed``) or sends it back (``warning.reopened``, a new round with a new
    handling deadline). Every step carries the deadlines in force (``shared.deadlines``) and,
    for acknowledging and handling, whether the step met its deadline."""

    warning_id: str = Field(max_length=64)
    finding_id: str = Field(max_length=64, description="the finding (hotspot.detected) the warning was opened for")
    unit: str = Field(max_length=64, description="the unit warned, which acknowledges and handles it")
    county: str | None = Field(default=None, max_length=64)
    centre: str | None = Field(default=None, max_length=64, description="the county's centre, which closes or reopens it")
    subject_class: str
    state: WarningState = Field(description="the warning's state after this step")
    round: int = Field(default=0, ge=0, description="0, then one more each time the centre reopens it")
    acknowledge_due_at: AwareDatetime = Field(description="签收 due (working time from opening)")
    handle_due_at: AwareDatetime = Field(description="处置 due in this round (working time from opening or reopening)")
    on_time: bool | None = Field(default=None, description="acknowledged / handled: whether this step met its deadline")
    note: str | None = Field(default=None, max_length=2000, description="what was done (handled), or why it is sent back (reopened)")


class SlaWarningSignalData(_Model):
    """A threshold of an early warning's clock (预警信息处置 run like a case): the 50%/75%
    reminder, the yellow card (黄牌), the red card (红牌), an urging (催办) or escalation (督办)
    of its acknowledge (签收) or handle (处置) deadline — the deadline insight carried on
    ``warning.*``. Its own type, not ``sla.warning`` / ``sla.breached``: those are about a case
    (case_id, the case's partition, counted in the case's unit score) and a warning is not one."""

    warning_id: str = Field(max_length=64)
    clock_id: str
    clock: Literal["warning_acknowledge", "warning_handle"]
    unit: str = Field(max_length=64, description="the unit warned")
    round: int = Field(default=0, ge=0, description="the warning's round (the centre's sending back)")
    signal: Literal["warning", "breached", "urged", "escalated"] = Field(
        description="as the case events: warning (reminder or yellow), breached (red), urged, escalated"
    )
    threshold: str = Field(description="e.g. '50%', 'yellow', 'red', 'urge-1', 'escalate'")
    level: Literal["info", "yellow", "red"] = Field(description="info: an early reminder; yellow: 黄牌; red: 红牌 and after")
    due_at: AwareDatetime
    sequence: int | None = Field(default=None, ge=1, description="urged: the n-th urging (working days overdue)")


# --------------------------------------------------------------------------- events


class CaseReceived(EventBase):
    type: Literal["case.received"] = "case.received"
    payload: ReceivedData


class CaseAccepted(EventBase):
    type: Literal["case.accepted"] = "case.accepted"
    payload: AcceptedData


class CaseRejected(EventBase):
    type: Literal["case.rejected"] = "case.rejected"
    payload: RejectedData


class CaseTriaged(EventBase):
    type: Literal["case.triaged"] = "case.triaged"
    payload: TriagedData


class CaseMerged(EventBase):
    type: Literal["case.merged"] = "case.merged"
    payload: MergedData


class CaseDispatched(EventBase):
    type: Literal["case.dispatched"] = "case.dispatched"
    payload: DispatchedData


class CaseSigned(EventBase):
    type: Literal["case.signed"] = "case.signed"
    payload: SignedData


class CaseReturned(EventBase):
    type: Literal["case.returned"] = "case.returned"
    payload: ReturnedData


class ReturnReviewed(EventBase):
    type: Literal["case.return_reviewed"] = "case.return_reviewed"
    payload: ReturnReviewedData


class CountyCalled(EventBase):
    type: Literal["case.county_called"] = "case.county_called"
    payload: CountyCalledData


class WhistleBlown(EventBase):
    type: Literal["case.whistle_blown"] = "case.whistle_blown"
    payload: WhistleBlownData


class CaseReportedUp(EventBase):
    type: Literal["case.reported_up"] = "case.reported_up"
    payload: ReportedUpData


class CasePassedDown(EventBase):
    type: Literal["case.passed_down"] = "case.passed_down"
    payload: PassedDownData


class CaseSurveyed(EventBase):
    type: Literal["case.surveyed"] = "case.surveyed"
    payload: SurveyedData


class WorkPlanFiled(EventBase):
    type: Literal["case.work_plan_filed"] = "case.work_plan_filed"
    payload: WorkPlanFiledData


class ProgressReported(EventBase):
    type: Literal["case.progress_reported"] = "case.progress_reported"
    payload: ProgressReportedData


class ExtensionRequested(EventBase):
    type: Literal["case.extension_requested"] = "case.extension_requested"
    payload: ExtensionRequestedData


class ExtensionApproved(EventBase):
    type: Literal["case.extension_approved"] = "case.extension_approved"
    payload: ExtensionApprovedData


class DeadlineMoved(EventBase):
    type: Literal["case.deadline_moved"] = "case.deadline_moved"
    payload: DeadlineMovedData


class ExtensionDenied(EventBase):
    type: Literal["case.extension_denied"] = "case.extension_denied"
    payload: ExtensionDeniedData


class CaseSuspended(EventBase):
    type: Literal["case.suspended"] = "case.suspended"
    payload: SuspendedData


class CaseResumed(EventBase):
    type: Literal["case.resumed"] = "case.resumed"
    payload: ResumedData


class CaseResolved(EventBase):
    type: Literal["case.resolved"] = "case.resolved"
    payload: ResolvedData


class CaseVerified(EventBase):
    type: Literal["case.verified"] = "case.verified"
    payload: VerifiedData


class VerificationFailed(EventBase):
    type: Literal["case.verification_failed"] = "case.verification_failed"
    payload: VerificationFailedData


class CaseClosed(EventBase):
    type: Literal["case.closed"] = "case.closed"
    payload: ClosedData


class CallbackCompleted(EventBase):
    type: Literal["case.callback_completed"] = "case.callback_completed"
    payload: CallbackCompletedData


class CaseRated(EventBase):
    type: Literal["case.rated"] = "case.rated"
    payload: RatedData


class CaseReopened(EventBase):
    type: Literal["case.reopened"] = "case.reopened"
    payload: ReopenedData


class SlaWarning(EventBase):
    type: Literal["sla.warning"] = "sla.warning"
    payload: SlaWarningData


class SlaBreached(EventBase):
    type: Literal["sla.breached"] = "sla.breached"
    payload: SlaBreachedData


class SlaUrged(EventBase):
    type: Literal["sla.urged"] = "sla.urged"
    payload: SlaUrgedData


class SlaEscalated(EventBase):
    type: Literal["sla.escalated"] = "sla.escalated"
    payload: SlaEscalatedData


class UnitRated(EventBase):
    type: Literal["unit.rated"] = "unit.rated"
    payload: UnitRatedData


class GridActivity(EventBase):
    case_scoped: ClassVar[bool] = False
    type: Literal["grid.activity"] = "grid.activity"
    payload: GridActivityData

    def subject_key(self) -> str:
        return f"grid-worker:{self.payload.worker_id}"


class GridWarning(EventBase):
    case_scoped: ClassVar[bool] = False
    type: Literal["grid.warning"] = "grid.warning"
    payload: GridWarningData

    def subject_key(self) -> str:
        return f"grid:{self.payload.grid}"


class HotspotDetected(EventBase):
    """Not about one case: about a pattern across cases (the evidence lists them)."""

    case_scoped: ClassVar[bool] = False
    type: Literal["hotspot.detected"] = "hotspot.detected"
    payload: HotspotDetectedData

    def subject_key(self) -> str:
        return f"hotspot:{self.payload.finding_id}"


class _WarningEvent(EventBase):
    """Not about one case: about an early warning (预警) and the unit warned."""

    case_scoped: ClassVar[bool] = False
    payload: WarningStepData

    def subject_key(self) -> str:
        return f"warning:{self.payload.warning_id}"


class WarningOpened(_WarningEvent):
    type: Literal["warning.opened"] = "warning.opened"


class WarningAcknowledged(_WarningEvent):
    type: Literal["warning.acknowledged"] = "warning.acknowledged"


class WarningHandled(_WarningEvent):
    type: Literal["warning.handled"] = "warning.handled"


class WarningClosed(_WarningEvent):
    type: Literal["warning.closed"] = "warning.closed"


class WarningReopened(_WarningEvent):
    type: Literal["warning.reopened"] = "warning.reopened"


class SlaWarningSignal(EventBase):
    """Not about a case: a threshold of an early warning's clock (partitioned with the warning)."""

    case_scoped: ClassVar[bool] = False
    type: Literal["sla.warning_signal"] = "sla.warning_signal"
    payload: SlaWarningSignalData

    def subject_key(self) -> str:
        return f"warning:{self.payload.warning_id}"


EVENT_CLASSES: tuple[type[EventBase], ...] = (
    CaseReceived, CaseAccepted, CaseRejected, CaseTriaged, CaseMerged, CaseDispatched,
    CaseSigned, CaseReturned, ReturnReviewed, CountyCalled, WhistleBlown, WorkPlanFiled,
    ProgressReported, ExtensionRequested, ExtensionApproved, ExtensionDenied, CaseSuspended, DeadlineMoved,
    CaseResumed, CaseResolved, CaseVerified, VerificationFailed, CaseClosed, CallbackCompleted,
    CaseRated, CaseReopened, SlaWarning, SlaBreached, SlaUrged, SlaEscalated, UnitRated,
    GridActivity, GridWarning, CaseReportedUp, CasePassedDown, HotspotDetected, CaseSurveyed,
    WarningOpened, WarningAcknowledged, WarningHandled, WarningClosed, WarningReopened, SlaWarningSignal,
)  # fmt: skip

# The wire union is made from the tuple above, so a type is listed once (twice, the two
# lists drifted: a stray comma once left every event but one unreadable).
Event = Annotated[Union[EVENT_CLASSES], Field(discriminator="type")]  # type: ignore[valid-type]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
EVENT_TYPES: dict[str, type[EventBase]] = {
    cls.model_fields["type"].default: cls for cls in EVENT_CLASSES
}

E = TypeVar("E", bound=EventBase)


def decode_event(body: bytes | str) -> EventBase:
    """Parse one event from its JSON body (raises pydantic.ValidationError when malformed)."""
    return EVENT_ADAPTER.validate_json(body)


def encode_event(event: EventBase) -> bytes:
    return event.model_dump_json().encode()


def make_event(
    cls: type[E],
    *,
    payload: BaseModel,
    producer: str,
    actor: Actor,
    case_id: str | None = None,
    caused_by: EventBase | None = None,
    occurred_at: datetime | None = None,
) -> E:
    """Build an event; when it is caused by another, carry the chain's correlation id."""
    event_id = uuid.uuid4()
    correlation = None
    if caused_by is not None:
        correlation = caused_by.correlation_id or caused_by.id
    return cls(
        id=event_id,
        case_id=case_id if case_id is not None else (caused_by.case_id if caused_by else None),
        producer=producer,
        actor=actor,
        payload=payload,
        causation_id=caused_by.id if caused_by else None,
        correlation_id=correlation or event_id,
        occurred_at=occurred_at or utcnow(),
    )


def system_actor(service: str) -> Actor:
    return Actor(id=f"service:{service}", role=Role.system)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the whole union, as committed in shared/schema/."""
    schema = EVENT_ADAPTER.json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"urn:jiesu:case-lifecycle:v{SCHEMA_VERSION}"
    schema["title"] = "case-lifecycle event"
    return schema
