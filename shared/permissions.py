"""Who may do what: one table of every state-changing route a person calls (issue #20).

Each entry names an action, the route that takes it, the roles allowed and the scope rule
that then decides for the one resource (a case, an order, a unit). A route consults its
entry through ``permit(action)`` — a FastAPI dependency that refuses any other role with a
403 naming the roles that may (the role alone says nothing about the resource, so nothing
can be probed) — and applies the scope rule itself, with the small pure functions of
``shared/scope.py`` (and ``dispatch/access.py`` for orders): what the caller may not see
answers 404, what lies outside its area 422 naming the field.

README's "Who may see and do what" prints this table (``python -m shared.permissions``
renders it; ``tests/test_permissions.py`` fails when the README differs), so the table
people read is the table the code enforces. Routes open on purpose, and those signed by a
machine client (12345, the SMS gateway), are listed in ``tests/test_route_guards.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from fastapi import Depends

from shared.actors import ActorDep
from shared.events import Actor, Role
from shared.scope import CENTRE_ROLES, CONTACT_ROLES, DEPARTMENT_ROLES, PLACE_ROLES, require_role

TOWNSHIP_ROLES = frozenset({Role.township_staff, Role.township_head})
#: Who works on an order of a unit: the unit, a unit above it, the centre serving it.
ORDER_ROLES = CENTRE_ROLES | PLACE_ROLES | DEPARTMENT_ROLES
#: Staff who handle a case and may open the citizen's contact (``shared.scope.may_open_contact``;
#: the auditor reads, and reads who saw what, but handles nothing).
HANDLER_ROLES = CONTACT_ROLES
#: Who administers a service's rules and machines: the centre's supervisors and ops.
ADMIN_ROLES = frozenset({Role.centre_supervisor, Role.ops})
#: Who edits the org directory: the centres' supervisors, each in its own part of the tree
#: (the city centre's the whole city). Not ops: the directory decides who sees which cases,
#: and ops sees no case.
DIRECTORY_EDITORS = frozenset({Role.centre_supervisor})
EVERY_PERSON = frozenset(role for role in Role if role is not Role.system)
#: Who keeps a grid's household register: its worker, the village and township above it.
GRID_KEEPERS = frozenset({Role.grid_worker, Role.village_staff}) | TOWNSHIP_ROLES


@dataclass(frozen=True)
class Permission:
    service: str
    method: str
    path: str
    roles: frozenset[Role]
    scope: str  # the scope rule, in plain words, with where it lives
    what: str  # "may not <what>" in a refusal

    @property
    def route(self) -> str:
        return f"{self.method} {self.path}"


def _p(service: str, method: str, path: str, roles: Iterable[Role], scope: str, what: str) -> Permission:
    return Permission(service, method, f"/api/v1{path}", frozenset(roles), scope, what)


#: Who acts on an early warning (预警) for the unit warned: its head and staff.
_WARNED = TOWNSHIP_ROLES | DEPARTMENT_ROLES
_WARNED_SCOPE = "the unit warned or a unit above it (`services/insight/early_warning.py` `may_act`)"
_WARNING_CENTRE = "the centre serving an area the unit warned lies in (`services/insight/early_warning.py` `may_act`)"
_ORDER_SCOPE = "the order's unit, a unit above it, or the centre serving it (`dispatch/access.py` `may_perform`)"

PERMISSIONS: dict[str, Permission] = {
    # intake
    "intake.triage": _p("intake", "POST", "/appeals/{case_id}/triage", CENTRE_ROLES,
                        "a case the centre sees; the township named exists and lies in the centre's area, the "
                        "village under it, the grid under the village (`shared/scope.py` `placement_problem`)",
                        "triage an appeal (人工分拨 is the centre's)"),
    "intake.contact": _p("intake", "POST", "/appeals/{case_id}/contact", HANDLER_ROLES,
                         "a case the caller sees (`shared/scope.py` `may_see_case`); each view is logged",
                         "see a citizen's contact details (the auditor reads who saw them)"),
    "intake.close_on_spot": _p("intake", "POST", "/appeals/{case_id}/close-on-spot",
                               {Role.village_staff, Role.township_staff, Role.township_head},
                               "谁接待、谁负责: only the person who received a simple window appeal (`received_by`), while "
                               "it is open and sent to no unit (`intake/domain.py` `on_spot_refusal`)",
                               "close an appeal on the spot (the window's receiver does)"),
    "intake.grid_patrol": _p("intake", "POST", "/grid/patrols", {Role.grid_worker},
                             "the worker's own grid, from the sign-in", "log grid work"),
    "intake.grid_household": _p("intake", "POST", "/grid/households", {Role.grid_worker},
                                "the worker's own grid, from the sign-in", "log grid work"),
    "intake.grid_login": _p("intake", "POST", "/grid/logins", {Role.grid_worker},
                            "the worker's own grid, from the sign-in", "log grid work"),
    "intake.grid_register": _p("intake", "PUT", "/grid/register/{household_ref}", GRID_KEEPERS,
                               "a grid worker their own grid; village and township staff the grids in their area "
                               "(`intake/grid_duties.py` `may_see_grid`)", "keep a grid's household register"),
    "intake.grid_visit": _p("intake", "POST", "/grid/visits", {Role.grid_worker},
                            "a household on the register of the worker's own grid", "log grid work"),
    "intake.grid_mailbox_open": _p("intake", "POST", "/grid/mailbox/openings", {Role.grid_worker},
                                   "the worker's own grid, from the sign-in", "log grid work"),
    "intake.grid_service": _p("intake", "POST", "/grid/services", {Role.grid_worker},
                              "the worker's own grid; an item of the catalogue", "log grid work"),
    "intake.grid_mailbox_schedule": _p("intake", "PUT", "/grid/mailbox/schedules/{grid}", GRID_KEEPERS - {Role.grid_worker},
                                       "a grid in the village's or township's area (`intake/grid_duties.py` `may_see_grid`)",
                                       "set a grid's mailbox schedule"),
    "intake.grid_check": _p("intake", "POST", "/grid/checks", ADMIN_ROLES,
                            "the grids of the area the supervisor's centre serves; ops every grid",
                            "check grids for missed duties"),
    # dispatch: cases
    "dispatch.dispatch": _p("dispatch", "POST", "/cases/{case_id}/dispatch", CENTRE_ROLES,
                            "a case of the centre's area, to a unit inside that area (`dispatch/access.py` `in_my_area`, `may_dispatch_to`)",
                            "dispatch by hand"),
    "dispatch.call": _p("dispatch", "POST", "/cases/{case_id}/call",
                        {Role.grid_worker, Role.village_staff} | TOWNSHIP_ROLES | CENTRE_ROLES,
                        "the case's township or its centre; a whistle from below (网格吹哨) by the staff of the case's "
                        "village or the worker of its grid, naming a lead (`dispatch/access.py` `calling_unit`); the "
                        "units called are the county's departments or the catalogue's owner of the matter (`may_call`)",
                        "call county departments (乡呼县应 / 吹哨报到)"),
    "dispatch.verify": _p("dispatch", "POST", "/cases/{case_id}/verify", TOWNSHIP_ROLES | CENTRE_ROLES,
                          "the case's township or the centre serving it (`dispatch/access.py` `may_verify`)",
                          "verify a case (核验)"),
    # dispatch: orders
    "dispatch.sign": _p("dispatch", "POST", "/orders/{order_no}/sign", ORDER_ROLES, _ORDER_SCOPE, "sign an order"),
    "dispatch.return": _p("dispatch", "POST", "/orders/{order_no}/return", ORDER_ROLES, _ORDER_SCOPE, "return an order"),
    "dispatch.claim": _p("dispatch", "POST", "/orders/{order_no}/claim", {Role.village_staff} | CENTRE_ROLES,
                         "a village's order, by its own staff or its own 综治中心 (`dispatch/access.py` `acts_as`)",
                         "claim an order (认领 is the village's)"),
    "dispatch.report_up": _p("dispatch", "POST", "/orders/{order_no}/report-up", {Role.village_staff} | CENTRE_ROLES,
                             "a village's order, by its own staff or its own 综治中心 (`dispatch/access.py` `acts_as`)",
                             "report an order up (上报 is the village's)"),
    "dispatch.pass_down": _p("dispatch", "POST", "/orders/{order_no}/pass-down", TOWNSHIP_ROLES | CENTRE_ROLES,
                             "a township's sole order, by its own staff or its own 综治中心, to one of its villages "
                             "(`dispatch/access.py` `acts_as`, `pass_down_problem`)",
                             "pass an order down (下派 is the township's)"),
    "dispatch.survey": _p("dispatch", "POST", "/orders/{order_no}/survey", ORDER_ROLES, _ORDER_SCOPE,
                          "record the on-site survey (现场勘查)"),
    "dispatch.plan": _p("dispatch", "POST", "/orders/{order_no}/plan", ORDER_ROLES, _ORDER_SCOPE, "file a work plan"),
    "dispatch.progress": _p("dispatch", "POST", "/orders/{order_no}/progress", ORDER_ROLES, _ORDER_SCOPE, "report progress"),
    "dispatch.extension": _p("dispatch", "POST", "/orders/{order_no}/extensions", ORDER_ROLES, _ORDER_SCOPE,
                             "ask for an extension"),
    "dispatch.suspend": _p("dispatch", "POST", "/orders/{order_no}/suspend", ORDER_ROLES, _ORDER_SCOPE, "suspend an order"),
    "dispatch.resume": _p("dispatch", "POST", "/orders/{order_no}/resume", ORDER_ROLES, _ORDER_SCOPE, "resume an order"),
    "dispatch.resolve": _p("dispatch", "POST", "/orders/{order_no}/resolve", ORDER_ROLES, _ORDER_SCOPE, "resolve an order"),
    "dispatch.review": _p("dispatch", "POST", "/orders/{order_no}/review", CENTRE_ROLES,
                          "the centre serving the order's unit (`dispatch/access.py` `may_perform`)", "review a return"),
    "dispatch.decide_extension": _p("dispatch", "POST", "/extensions/{request_id}/decision", CENTRE_ROLES,
                                    "the centre serving the order's unit (`dispatch/access.py` `may_perform`)",
                                    "decide an extension"),
    # sla
    "sla.policy": _p("sla", "POST", "/policies", ADMIN_ROLES,
                     "ops; a centre's supervisor for a region in its area, the city's for every region (scope.rules_problem)",
                     "write SLA policies"),
    "sla.time": _p("sla", "POST", "/admin/time", ADMIN_ROLES, "this service (only with SLA_TIME_TRAVEL=true)",
                   "move SLA's clock"),
    # scoring
    "scoring.publish": _p("scoring", "POST", "/scores/publish", ADMIN_ROLES,
                          "a county the supervisor's centre serves; ops any county", "publish scores"),
    "scoring.weights": _p("scoring", "POST", "/weights", ADMIN_ROLES,
                          "ops or the city's supervisors: one set of weights (scope.rules_problem)", "change the weights"),
    "scoring.grid_points": _p("scoring", "POST", "/grid/points", ADMIN_ROLES,
                              "ops or the city's supervisors: one points table (scope.rules_problem)",
                              "change grid points"),
    "scoring.figure_format": _p("scoring", "POST", "/figure-formats", ADMIN_ROLES,
                                "ops, or the supervisors of a centre serving that county (scope.rules_problem)",
                                "set how a county's figures are published"),
    "scoring.rate_department": _p("scoring", "POST", "/ratings/departments",
                                  {Role.grid_worker, Role.village_staff} | TOWNSHIP_ROLES,
                                  "the unit that made the call — the township, or the village or grid that blew the "
                                  "whistle (网格吹哨) — rating a department it called", "rate a department"),
    "scoring.rate_call": _p("scoring", "POST", "/ratings/calls", DEPARTMENT_ROLES, "a department called in that call",
                            "rate a call"),
    "scoring.rebuild": _p("scoring", "POST", "/admin/rebuild", ADMIN_ROLES, "this service", "run admin actions"),
    "scoring.clock": _p("scoring", "POST", "/admin/clock", ADMIN_ROLES, "this service (only with SCORING_TEST_CLOCK set)",
                        "move the clock"),
    # notify
    "notify.callback_result": _p("notify", "POST", "/callbacks/{task_id}/result", TOWNSHIP_ROLES | CENTRE_ROLES,
                                 "a callback task of a township in the caller's area", "record callbacks (回访)"),
    "notify.inbox_read": _p("notify", "POST", "/inbox/{recipient}/{message_id}/read", EVERY_PERSON,
                            "the inbox's owner only: its unit's staff (heads for the head's inbox), the citizen",
                            "mark inbox messages read"),
    "notify.webhook_resend": _p("notify", "POST", "/admin/webhooks/{message_id}/resend",
                                {Role.ops, Role.centre_supervisor, Role.centre_dispatcher}, "12345 deliveries (no case data)",
                                "re-send webhooks"),
    "notify.clock": _p("notify", "POST", "/admin/clock", ADMIN_ROLES, "this service (only with NOTIFY_TEST_CLOCK=true)",
                       "move the clock"),
    # directory
    "directory.holidays": _p("directory", "PUT", "/holidays/{year}", ADMIN_ROLES,
                             "ops or the city's supervisors: the national holiday schedule (scope.rules_problem)",
                             "load holiday tables"),
    "directory.unit_put": _p("directory", "PUT", "/units/{code}", DIRECTORY_EDITORS,
                             "the unit's old and new place inside the editor's area "
                             "(`services/directory/domain.py` `edit_problems`)", "change the directory"),
    "directory.unit_delete": _p("directory", "DELETE", "/units/{code}", DIRECTORY_EDITORS,
                                "a unit inside the editor's area", "change the directory"),
    "directory.user_put": _p("directory", "PUT", "/users/{user_id}", DIRECTORY_EDITORS,
                             "the user's old and new unit inside the editor's area; users with no unit, auditors and "
                             "ops by the city centre only", "change the directory"),
    "directory.user_delete": _p("directory", "DELETE", "/users/{user_id}", DIRECTORY_EDITORS,
                                "a user inside the editor's area", "change the directory"),
    "directory.catalogue_put": _p("directory", "PUT", "/catalogue", DIRECTORY_EDITORS,
                                  "every line changed covers an area inside the editor's area", "change the directory"),
    # insight (预警信息处置)
    "insight.warning_acknowledge": _p("insight", "POST", "/warnings/{warning_id}/acknowledge", _WARNED,
                                      _WARNED_SCOPE, "acknowledge an early warning (the unit warned does)"),
    "insight.warning_handle": _p("insight", "POST", "/warnings/{warning_id}/handle", _WARNED, _WARNED_SCOPE,
                                 "report how an early warning was handled (the unit warned does)"),
    "insight.warning_close": _p("insight", "POST", "/warnings/{warning_id}/close", CENTRE_ROLES, _WARNING_CENTRE,
                                "close an early warning (the centre does)"),
    "insight.warning_reopen": _p("insight", "POST", "/warnings/{warning_id}/reopen", CENTRE_ROLES, _WARNING_CENTRE,
                                 "send an early warning back (the centre does)"),
    "insight.task": _p("insight", "POST", "/tasks", CENTRE_ROLES,
                       "each item's unit (a township, village, grid or department) and place lie in the centre's area; "
                       "a finding it answers is one the centre sees (`services/insight/tasks.py` `placement_problem`)",
                       "send a task down (自上而下的任务 are the centre's)"),
}  # fmt: skip


def require(actor: Actor, action: str) -> None:
    """403 naming the roles that may, unless the actor's role is in the action's entry."""
    permission = PERMISSIONS[action]
    require_role(actor, permission.roles, permission.what)


def permit(action: str) -> Callable[..., object]:
    """A route dependency: the signed-in actor, refused unless its role may take ``action``."""
    if action not in PERMISSIONS:
        raise KeyError(f"no permission {action!r} in shared.permissions.PERMISSIONS")

    def dependency(actor: ActorDep) -> Actor:
        require(actor, action)
        return actor

    dependency.__name__ = "permitted"
    dependency.action = action  # type: ignore[attr-defined]  # read by the test over the table
    return Depends(dependency)


# --------------------------------------------------------------------------- the README's table

BEGIN = "<!-- permissions: generated by `python -m shared.permissions --write README.md`; do not edit by hand -->"
END = "<!-- /permissions -->"


def render_markdown() -> str:
    """The table as Markdown, one row per action, grouped by service in table order."""
    lines = ["| service | route | roles allowed | scope |", "|---|---|---|---|"]
    for permission in PERMISSIONS.values():
        roles = ", ".join(role.value for role in Role if role in permission.roles)
        if permission.roles == EVERY_PERSON:
            roles = "anyone signed in"
        lines.append(f"| {permission.service} | `{permission.route}` | {roles} | {permission.scope} |")
    return "\n".join(lines) + "\n"


def readme_block(text: str) -> str | None:
    """The generated block of a README, between the markers (None when absent)."""
    if BEGIN not in text or END not in text:
        return None
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"


def write_readme(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    if readme_block(text) is None:
        raise SystemExit(f"{path} has no {BEGIN!r} … {END!r} block")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    path.write_text(f"{head}{BEGIN}\n{render_markdown()}{END}{tail}", encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover - a developer's tool
    if sys.argv[1:2] == ["--write"] and len(sys.argv) == 3:
        write_readme(Path(sys.argv[2]))
    else:
        sys.stdout.write(render_markdown())
