"""Bearer JWT authentication with the programme's roles.

Three kinds of token are verified, each against its own issuer:
- an identity provider's RS256/ES256 tokens, against its JWKS (JWT_JWKS_URL, JWT_ISSUER);
- without an identity provider, HS256 tokens of JWT_ISSUER signed with JWT_SECRET;
- development tokens (POST /dev/tokens, local mode only): HS256 with DEV_ISSUER, accepted only
  while DEV_TOKENS is on, so a production service never takes one.
Every token names its audiences (`aud`): a service accepts only tokens meant for it. Access
comes from claims that are present (sub, roles, org, partnership_roles, programme), never from
one that is missing: a manager is programme-wide only with `"programme": true`.

Staff roles are held per partnership (`partnership_roles: {"ptn-…": ["grant_officer"]}`): an
assessor of A who is a grant officer of B is no grant officer in A. A staff role in the flat
`roles` claim gives no right in any partnership (only a programme-wide manager's, with the
explicit claim); participant roles (visitor, host) are the organisation's, in `roles`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from functools import lru_cache

import jwt
from fastapi import Request, Security
from fastapi.security import HTTPBearer
from pydantic import BaseModel, Field

from cx_shared.errors import Forbidden, Unauthorized
from cx_shared.logging import get_logger
from cx_shared.vocabulary import Role

log = get_logger(__name__)

DEV_ISSUER = "clusterxchange-development"
SERVICES = ("applications", "assessment", "grants", "notifications")
ASYMMETRIC = ["RS256", "ES256"]


def audience_of(service: str) -> str:
    return f"clusterxchange-{service}"


PROGRAMME_AUDIENCES = [audience_of(s) for s in SERVICES]


STAFF_ROLES = frozenset({Role.ASSESSOR, Role.GRANT_OFFICER, Role.PROGRAMME_MANAGER})


class Principal(BaseModel):
    subject: str
    roles: set[Role]  # as the token's `roles` claim says (staff roles there act nowhere by themselves)
    organisation_id: str | None = None
    partnership_roles: dict[str, set[Role]] = Field(default_factory=dict)  # staff roles, per partnership
    programme: bool = False  # the explicit claim of programme-wide staff

    def has(self, *roles: Role) -> bool:
        """Holds one of `roles` somewhere (a first gate: where is asked by `has_in`)."""
        return bool(self.held_anywhere.intersection(roles))

    @property
    def held_anywhere(self) -> set[Role]:
        participant = self.roles - STAFF_ROLES
        staff = set().union(*self.partnership_roles.values()) if self.partnership_roles else set()
        return participant | staff | self.everywhere

    @property
    def everywhere(self) -> set[Role]:
        """What the caller holds in every partnership: the programme manager's role of a programme-wide
        manager, nothing else (his other staff roles are held where `partnership_roles` says)."""
        return {Role.PROGRAMME_MANAGER} if self.programme_wide else set()

    @property
    def programme_wide(self) -> bool:
        """A programme manager whose token says so; a missing partnerships claim is not it."""
        return self.programme and Role.PROGRAMME_MANAGER in self.roles

    @property
    def partnership_ids(self) -> list[str]:
        """The partnerships in which the caller holds any staff role."""
        return sorted(p for p, roles in self.partnership_roles.items() if roles)

    def partnerships_with(self, *roles: Role) -> list[str]:
        """The partnerships in which the caller holds one of `roles`."""
        return sorted(p for p, held in self.partnership_roles.items() if held.intersection(roles))

    def in_partnership(self, partnership_id: str) -> bool:
        """Staff of the partnership, in any role (or programme-wide)."""
        return self.programme_wide or bool(self.partnership_roles.get(partnership_id))

    def has_in(self, partnership_id: str, *roles: Role) -> bool:
        """Holds one of `roles` in that partnership (a programme-wide manager is a manager everywhere)."""
        held = set(self.partnership_roles.get(partnership_id, ())) | self.everywhere
        return bool(held.intersection(roles))


def issue_token(secret: str, issuer: str, subject: str, roles: Iterable[Role | str], *,
                organisation_id: str | None = None, partnership_ids: Iterable[str] = (),
                partnership_roles: Mapping[str, Iterable[Role | str]] | None = None,
                programme: bool = False, audiences: Iterable[str] = PROGRAMME_AUDIENCES,
                ttl_seconds: int = 8 * 3600) -> str:
    """A signed token. Without `partnership_roles`, the staff roles among `roles` are held in each
    of `partnership_ids` (the common case of one person with one job in some partnerships)."""
    roles = [Role(r) for r in roles]
    if partnership_roles is None:
        staff = [r for r in roles if r in STAFF_ROLES]
        partnership_roles = {p: staff for p in partnership_ids if staff}
    now = int(time.time())
    claims = {"sub": subject, "iss": issuer, "aud": list(audiences), "iat": now, "exp": now + ttl_seconds,
              "roles": [str(r) for r in roles], "org": organisation_id,
              "partnership_roles": {p: sorted(str(Role(r)) for r in rs) for p, rs in partnership_roles.items()},
              "programme": programme}
    return jwt.encode(claims, secret, algorithm="HS256")


def _partnership_roles(claim) -> dict[str, set[Role]]:
    """The claim as a map of staff roles; a participant role there is refused (not ignored)."""
    if claim is None:
        return {}
    if not isinstance(claim, dict):
        raise TypeError("partnership_roles must be an object")
    found = {str(p): {Role(r) for r in roles} for p, roles in claim.items()}
    if any(not roles <= STAFF_ROLES for roles in found.values()):
        raise ValueError("partnership_roles holds only staff roles")
    return found


class KeySet(jwt.PyJWKClient):
    """An identity provider's key set, fetched at most once per `interval` seconds whatever
    asks (a token with an unknown `kid`, an expired cache, a failed fetch): a stranger's
    tokens cannot make the service hammer the provider. PyJWT's own cool-down counts only
    successful fetches, so with the provider down every such token fetched again.
    Keys are not cached beyond the set's lifespan: a key the provider withdrew is refused
    once the set is fetched again."""

    def __init__(self, url: str, interval: float, clock=time.monotonic):
        super().__init__(url, cache_keys=False, lifespan=max(300.0, interval), timeout=5,
                         cooldown_duration=interval)
        self.interval, self.clock = interval, clock
        self.last_attempt: float | None = None

    def fetch_data(self):
        now = self.clock()
        if self.last_attempt is not None and now - self.last_attempt < self.interval:
            raise jwt.PyJWKClientConnectionError(f"the key set was fetched less than {self.interval:g} s ago")
        self.last_attempt = now
        return super().fetch_data()


@lru_cache(maxsize=4)
def _jwks(url: str, interval: float) -> KeySet:
    # One per key-set URL. FastAPI runs the sync `principal` dependency in its thread pool, so a
    # fetch never blocks the event loop (and PyJWKClient's lock lets one thread fetch at a time).
    return KeySet(url, interval)


def _verified_claims(token: str, settings) -> dict:
    algorithm = jwt.get_unverified_header(token).get("alg")
    required = {"require": ["sub", "exp", "iss", "aud"]}
    audience = audience_of(settings.service_name)
    if settings.jwt_jwks_url and algorithm in ASYMMETRIC:
        key = _jwks(settings.jwt_jwks_url, settings.jwt_jwks_refetch_seconds).get_signing_key_from_jwt(token).key
        return jwt.decode(token, key, algorithms=ASYMMETRIC, issuer=settings.jwt_issuer, audience=audience,
                          options=required)
    issuers = [DEV_ISSUER] if settings.dev_tokens else []
    if not settings.jwt_jwks_url:
        issuers.append(settings.jwt_issuer)
    return jwt.decode(token, settings.jwt_secret, algorithms=["HS256"], issuer=issuers, audience=audience,
                      options=required)


def authenticate(token: str, settings) -> Principal:
    """The caller a token names, or 401 without the reason (it helps only a forger; it is logged)."""
    try:
        claims = _verified_claims(token, settings)
        return Principal(subject=claims["sub"], roles={Role(r) for r in claims.get("roles", [])},
                         organisation_id=claims.get("org"),
                         partnership_roles=_partnership_roles(claims.get("partnership_roles")),
                         programme=claims.get("programme") is True)
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        log.info("bearer token refused", reason=type(exc).__name__)
        raise Unauthorized("invalid bearer token") from exc


BEARER = HTTPBearer(auto_error=False, description="a JWT: the identity provider's, or a development token")


def principal(request: Request, _documented=Security(BEARER)) -> Principal:
    """FastAPI dependency: the authenticated caller, or 401. (`_documented` only puts the bearer
    scheme in the OpenAPI document; the header is read here, with our own problem answer.)"""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("a bearer token is required (Authorization: Bearer <jwt>)")
    who = authenticate(token, request.app.state.settings)
    if (limits := getattr(request.app.state, "rate_limits", None)) is not None:
        limits.principal_writes(request, who.subject)  # counted once verified: nobody spends another's
    return who


def require_role(who: Principal, *roles: Role) -> None:
    if not who.has(*roles):
        raise Forbidden(f"this action needs one of the roles: {', '.join(sorted(map(str, roles)))}")


def require_role_in(who: Principal, partnership_id: str, *roles: Role) -> None:
    """One of `roles` held in that partnership (not merely somewhere), or 403."""
    require_role(who, *roles)
    if not who.has_in(partnership_id, *roles):
        raise Forbidden(f"this action needs one of the roles {', '.join(sorted(map(str, roles)))} "
                        f"in partnership {partnership_id}")
