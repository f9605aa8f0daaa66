"""What a use case answers when it will not do what was asked, in the domain's words.

Services raise these and know nothing of HTTP; ``shared.problems`` maps each kind, in one
place, to the problem+json answer a client gets (the status from the kind, the problem
``type`` from ``code``, ``detail`` and every fact as a member of the document). The consumer
never sees them: an event handler that refuses an event is a poison event, not an answer.

- ``NotFound``: not there, or not the caller's to see (answered alike, so ids cannot be probed);
- ``Forbidden``: the caller may see it but may not do this;
- ``Invalid``: a value the rules refuse, naming the ``field`` (or, for several, ``errors``);
- ``Conflict``: the thing's current state refuses it; ``WrongState`` names the state and what
  may be done now (``allowed_actions``), ``StaleVersion`` the version the caller did not see;
- ``Expired``: it was valid once and no longer is (a one-time link past its time);
- ``PreconditionFailed``: the version the caller based a change on (``If-Match``) is not the
  current one (``current_version``);
- ``Unavailable``: the service cannot answer now (its data is not there yet).
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """``detail`` for a person; ``code`` the stable kind when more precise than the class's
    (``already-dispatched``); ``facts`` what a client may act on (``state``, ``unit`` …)."""

    default_code: ClassVar[str | None] = None

    def __init__(self, detail: str, *, code: str | None = None, **facts: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.default_code
        self.facts = facts


class NotFound(DomainError):
    """Not there, or not the caller's to read."""


class Forbidden(DomainError):
    """The caller may read it but not do this."""


class Invalid(DomainError):
    """A value the rules refuse; ``field`` names it (None: several, listed in ``errors``)."""

    def __init__(self, detail: str, *, field: str | None, code: str | None = None, **facts: Any) -> None:
        if field is not None:
            facts["field"] = field
        super().__init__(detail, code=code, **facts)
        self.field = field


class Conflict(DomainError):
    """The current state (or another change that came first) refuses it."""


class WrongState(Conflict):
    """Not in this state: names the ``state`` and, when known, the ``allowed_actions`` now."""

    default_code = "invalid-state"

    def __init__(
        self, detail: str, *, state: str, allowed_actions: list[str] | None = None, code: str | None = None, **facts: Any
    ) -> None:
        if allowed_actions is not None:
            facts["allowed_actions"] = allowed_actions
        super().__init__(detail, code=code, state=state, **facts)
        self.state = state
        self.allowed_actions = allowed_actions


class StaleVersion(Conflict):
    """Changed by someone else since the caller read it (its ``version`` is in the facts)."""

    default_code = "stale-version"


class Expired(DomainError):
    """Valid once, no longer (a one-time link past its time)."""


class PreconditionFailed(DomainError):
    """The change was based on a version that is no longer the current one."""

    default_code = "stale-version"


class Unavailable(DomainError):
    """Cannot answer now (e.g. nothing loaded yet); not the caller's fault."""
