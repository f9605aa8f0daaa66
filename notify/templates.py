"""Message templates (jinja2), per kind and channel, in Chinese.

A template named ``<kind>.<channel>`` wins over ``<kind>``. Text to a unit is scrubbed of
phone and ID numbers (shared.privacy); text to the citizen may address them.
"""

from __future__ import annotations

from typing import Any

from jinja2 import DictLoader, Environment, StrictUndefined, TemplateNotFound

from shared.privacy import scrub

TEMPLATES: dict[str, str] = {
    # ---- to the citizen
    "citizen.accepted": "您的诉求已受理，编号{{ tracking_no }}。我们将尽快办理并告知进展。",
    "citizen.rejected": "您的诉求（编号{{ tracking_no or case_id }}）不予受理：{{ reason }}",
    "citizen.dispatched": "您的诉求（编号{{ tracking_no or case_id }}）已交由{{ unit_name }}办理。",
    "citizen.resolved": "您的诉求（编号{{ tracking_no or case_id }}）已办结，答复如下：{{ answer }}",
    "citizen.closed": (
        "您的诉求（编号{{ tracking_no or case_id }}）已办结销号。"
        "{% if callback_day %}工作人员将于{{ callback_day }}回访。{% endif %}"
        "{% if rating_link %}欢迎评价：{{ rating_link }}{% endif %}"
        "{% if questionnaire_link %} 满意度问卷：{{ questionnaire_link }}{% endif %}"
    ),
    "citizen.reopened": "您的诉求（编号{{ tracking_no or case_id }}）已重新交办办理（第{{ redo_round }}次重办）。",
    "citizen.lookup_code": "您正在查询诉求（编号{{ tracking_no }}）的办理进度，验证码{{ code }}，{{ minutes }}分钟内有效，请勿告知他人。",
    # ---- to units
    "unit.dispatched": "新交办单{{ order_no }}：诉求{{ tracking_no or case_id }}，请及时签收办理。",
    "unit.county_called": "乡呼县应：{{ township_name or township }}呼叫贵单位办理诉求{{ tracking_no or case_id }}（{{ reason }}），请于{{ respond_within_minutes }}分钟内响应。",
    "unit.whistle_blown": "吹哨报到：{{ blown_by_name or township_name or township }}就诉求{{ tracking_no or case_id }}吹哨（{{ reason }}），牵头单位{{ lead_unit_name or lead_unit }}，请于{{ respond_within_minutes }}分钟内报到。",
    "unit.whistle_blown.township": "网格吹哨抄送：{{ blown_by_name or blown_by }}就诉求{{ tracking_no or case_id }}吹哨（{{ reason }}），牵头单位{{ lead_unit_name or lead_unit }}，须于{{ respond_within_minutes }}分钟内报到。",
    "unit.yellow_card": "黄牌预警：诉求{{ tracking_no or case_id }}即将超期（期限{{ due_at }}），请抓紧办理。",
    "unit.red_card": "红牌：诉求{{ tracking_no or case_id }}已超期（期限{{ due_at }}），请立即办理。",
    "unit.urged": "催办（第{{ sequence }}次）：诉求{{ tracking_no or case_id }}已超期{{ overdue_working_days }}个工作日。",
    "unit.yellow_card.first_unit": "首问负责抄送·黄牌预警：贵单位首问的诉求{{ tracking_no or case_id }}即将超期（期限{{ due_at }}，承办单位{{ handler_name }}），请督促办结。",
    "unit.red_card.first_unit": "首问负责抄送·红牌：贵单位首问的诉求{{ tracking_no or case_id }}已超期（期限{{ due_at }}，承办单位{{ handler_name }}），请督促办结。",
    "unit.urged.first_unit": "首问负责抄送·催办（第{{ sequence }}次）：贵单位首问的诉求{{ tracking_no or case_id }}已超期{{ overdue_working_days }}个工作日（承办单位{{ handler_name }}）。",
    "unit.escalated": "督办：诉求{{ tracking_no or case_id }}已提级督办（{{ escalation_reasons.get(reason, reason) }}）。{{ detail or '' }}",
    "unit.escalated.centre": "督办提请：{{ handler_name }}承办的诉求{{ tracking_no or case_id }}已提级督办（{{ escalation_reasons.get(reason, reason) }}），请督查督办。{{ detail or '' }}",
    # ---- grid duties missed (grid.warning), to the grid and its village or community
    "grid.visit_missed": "走访预警：网格{{ grid }}的困难/重点监测户{{ subject }}在{{ period }}未走访（每月至少一次），请尽快入户。",
    "grid.mailbox_missed": "开箱预警：网格{{ grid }}的意见箱应于{{ subject }}开箱取信，未见开箱记录。",
    # ---- an early warning's clock (sla.warning_signal): 签收 (warning_acknowledge) or 处置 (warning_handle)
    "unit.warning.yellow_card": "预警{{ '签收' if clock == 'warning_acknowledge' else '处置' }}即将超期{% if level == 'yellow' %}（黄牌）{% endif %}：预警{{ warning_id }}期限{{ due_at }}，请抓紧办理。",
    "unit.warning.red_card": "红牌：预警{{ warning_id }}{{ '未按时签收' if clock == 'warning_acknowledge' else '未按时处置' }}（期限{{ due_at }}），请立即办理。",
    "unit.warning.urged": "催办（第{{ sequence }}次）：预警{{ warning_id }}{{ '签收' if clock == 'warning_acknowledge' else '处置' }}已超期{{ sequence }}个工作日。",
    "unit.warning.escalated": "督办：预警{{ warning_id }}{{ '签收' if clock == 'warning_acknowledge' else '处置' }}超期已提级督办（期限{{ due_at }}）。",
    "unit.hotspot": "未诉先办预警：{{ explanation }}（依据{{ case_ids | length }}件诉求，{{ window_start }}至{{ window_end }}）",
    # ---- the 12345 status webhook carries JSON; this line is its human-readable text
    "hotline.status": "工单{{ ticket_no or tracking_no or case_id }}：{{ label }}",
}
SMS_SIGNATURE = "【接诉即办】"

# Why a case was escalated (督办), as the staff read it (``SlaEscalatedData.reason``).
ESCALATION_REASONS = {"overdue": "超期未办结", "redo_limit": "群众三次不满意、已重办三次", "lead_dispute": "牵头单位有争议"}

_env = Environment(loader=DictLoader(TEMPLATES), undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


def render(kind: str, channel: str, data: dict[str, Any], *, to_citizen: bool) -> str:
    values = {**_defaults(), **data}
    try:
        template = _env.get_template(f"{kind}.{channel}")
    except TemplateNotFound:
        template = _env.get_template(kind)
    text = template.render(**values)
    if not to_citizen:
        text = scrub(text)
    if channel == "sms":
        text = SMS_SIGNATURE + text
    return text


def _defaults() -> dict[str, Any]:
    # Optional fields a template may mention although an event lacks them.
    return {
        "tracking_no": None, "case_id": None, "callback_day": None, "rating_link": None,
        "questionnaire_link": None, "detail": None, "unit_name": None, "township": None, "township_name": None, "reason": None,
        "lead_unit": None, "lead_unit_name": None, "ticket_no": None, "label": None,
        "escalation_reasons": ESCALATION_REASONS,
    }  # fmt: skip
