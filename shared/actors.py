"""Who is acting on a request, as one FastAPI dependency every service uses.

With ``AUTH_MODE=jwt`` (or a verifier in ``app.state.token_verifier``) the actor comes from
a verified ``Authorization: Bearer`` token (``shared.auth``): ``sub``/``role``/``unit``, and
X-Actor-* headers are ignored. With ``AUTH_MODE=headers`` — the development default — the
caller states who it is in three headers: ``X-Actor-Id``, ``X-Actor-Role`` (a
``shared.events.Role``) and ``X-Actor-Unit`` (an org-directory unit code). Either way the
services record the same ``Actor`` on every event, and routes do not change.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from shared.auth import BearerDep, bearer_scheme, verifier_for
from shared.events import Actor, Role
from shared.problems import Problem

ROLES = ", ".join(role.value for role in Role if role is not Role.system)


async def current_actor(
    request: Request,
    bearer: BearerDep,
    x_actor_id: Annotated[str | None, Header(description="who acts (AUTH_MODE=headers only)")] = None,
    x_actor_role: Annotated[str | None, Header(description=f"their role: {ROLES} (AUTH_MODE=headers only)")] = None,
    x_actor_unit: Annotated[str | None, Header(description="their org unit code, e.g. LB-XC-ZJJ (AUTH_MODE=headers only)")] = None,
) -> Actor:
    verifier = verifier_for(request)
    if verifier is not None:
        # Signed-in mode: only the token counts; X-Actor-* headers are ignored, never merged.
        return await verifier.actor_from_credentials(bearer)
    if not x_actor_id or not x_actor_role:
        raise Problem(401, "say who is acting: X-Actor-Id and X-Actor-Role headers (X-Actor-Unit for unit staff)")
    try:
        role = Role(x_actor_role)
    except ValueError:
        raise Problem(400, f"unknown role {x_actor_role!r}; one of: {ROLES}", slug="unknown-role") from None
    if role is Role.system:
        raise Problem(403, "role 'system' is for services acting on their own, not for requests")
    return Actor(id=x_actor_id[:128], role=role, org_unit=(x_actor_unit or None) and x_actor_unit[:64])


ActorDep = Annotated[Actor, Depends(current_actor)]


async def actor_of(request: Request) -> Actor:
    """``current_actor`` for a route that decides for itself whether it needs to know who is
    acting (open to citizens, but a grid worker's report must be signed in)."""
    headers = request.headers
    return await current_actor(
        request, await bearer_scheme(request), headers.get("X-Actor-Id"), headers.get("X-Actor-Role"), headers.get("X-Actor-Unit")
    )


def actor_headers(actor_id: str, role: Role | str, unit: str | None = None) -> dict[str, str]:
    """The headers a client (or a test) sends to act as someone."""
    headers = {"X-Actor-Id": actor_id, "X-Actor-Role": str(Role(role).value)}
    if unit:
        headers["X-Actor-Unit"] = unit
    return headers
