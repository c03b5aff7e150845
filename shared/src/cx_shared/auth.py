"""Bearer JWT authentication with the programme's roles.

Local mode can issue development tokens; production verifies tokens from the
partnership's identity provider with the same claims (sub, roles, org, partnerships).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import jwt
from fastapi import Request
from pydantic import BaseModel, Field

from cx_shared.errors import Forbidden, Unauthorized
from cx_shared.vocabulary import Role


class Principal(BaseModel):
    subject: str
    roles: set[Role]
    organisation_id: str | None = None
    partnership_ids: list[str] = Field(default_factory=list)

    def has(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))

    def in_partnership(self, partnership_id: str) -> bool:
        if Role.PROGRAMME_MANAGER in self.roles and not self.partnership_ids:
            return True  # a programme-wide manager
        return partnership_id in self.partnership_ids


def issue_token(secret: str, issuer: str, subject: str, roles: Iterable[Role | str], *,
                organisation_id: str | None = None, partnership_ids: Iterable[str] = (),
                ttl_seconds: int = 8 * 3600) -> str:
    now = int(time.time())
    claims = {"sub": subject, "iss": issuer, "iat": now, "exp": now + ttl_seconds,
              "roles": [str(Role(r)) for r in roles], "org": organisation_id,
              "partnerships": list(partnership_ids)}
    return jwt.encode(claims, secret, algorithm="HS256")


def decode_token(token: str, secret: str, issuer: str) -> Principal:
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], issuer=issuer,
                            options={"require": ["sub", "exp", "iss"]})
        return Principal(subject=claims["sub"], roles={Role(r) for r in claims.get("roles", [])},
                         organisation_id=claims.get("org"), partnership_ids=claims.get("partnerships") or [])
    except (jwt.PyJWTError, ValueError) as exc:
        raise Unauthorized(f"invalid bearer token: {exc}") from exc


def principal(request: Request) -> Principal:
    """FastAPI dependency: the authenticated caller, or 401."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("a bearer token is required (Authorization: Bearer <jwt>)")
    settings = request.app.state.settings
    return decode_token(token, settings.jwt_secret, settings.jwt_issuer)


def require_role(who: Principal, *roles: Role) -> None:
    if not who.has(*roles):
        raise Forbidden(f"this action needs one of the roles: {', '.join(sorted(map(str, roles)))}")
