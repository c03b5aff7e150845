"""Who a token says the caller is, and which tokens are refused: development tokens outside
development, tokens meant for another service, an identity provider's tokens checked against
its key set served over real HTTP, and programme-wide access only by an explicit claim."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cx_shared.auth import DEV_ISSUER, audience_of, authenticate, issue_token
from cx_shared.errors import Unauthorized
from cx_shared.settings import ServiceSettings
from cx_shared.vocabulary import Role

SECRET = "a-test-secret-that-is-long-enough-0123456789"
IDP = "https://idp.example.eu/realms/cx"


def settings(**overrides) -> ServiceSettings:
    return ServiceSettings(service_name="grants", jwt_secret=SECRET, **overrides)


def refused(token: str, s: ServiceSettings) -> str:
    with pytest.raises(Unauthorized) as caught:
        authenticate(token, s)
    return str(caught.value)


def test_development_tokens_only_while_development_tokens_are_on():
    token = issue_token(SECRET, DEV_ISSUER, "dev", [Role.VISITOR])
    assert authenticate(token, settings(dev_tokens=True)).subject == "dev"
    assert refused(token, settings(dev_tokens=False)) == "invalid bearer token"


def test_a_token_for_another_service_or_without_audience_is_refused():
    s = settings()
    assert authenticate(issue_token(SECRET, s.jwt_issuer, "u", ["visitor"]), s).subject == "u"
    for audiences in ([audience_of("applications")], []):
        refused(issue_token(SECRET, s.jwt_issuer, "u", ["visitor"], audiences=audiences), s)


def test_the_reason_of_a_refusal_is_not_told():
    s = settings()
    expired = issue_token(SECRET, s.jwt_issuer, "u", ["visitor"], ttl_seconds=-10)
    forged = issue_token("another-secret-that-is-long-enough-0123456789", s.jwt_issuer, "u", ["visitor"])
    assert {refused(expired, s), refused(forged, s), refused("not.a.jwt", s)} == {"invalid bearer token"}


def test_programme_wide_access_comes_only_from_the_explicit_claim():
    s = settings()
    scoped = authenticate(issue_token(SECRET, s.jwt_issuer, "m", ["programme_manager"]), s)
    assert not scoped.programme_wide and not scoped.in_partnership("ptn-1")
    wide = authenticate(issue_token(SECRET, s.jwt_issuer, "m", ["programme_manager"], programme=True), s)
    assert wide.programme_wide and wide.in_partnership("ptn-1")
    assessor = authenticate(issue_token(SECRET, s.jwt_issuer, "a", ["assessor"], programme=True), s)
    assert not assessor.programme_wide  # the claim widens programme managers only


def test_roles_are_held_per_partnership():
    s = settings()
    both = authenticate(issue_token(SECRET, s.jwt_issuer, "x", ["assessor", "grant_officer"], partnership_roles={
        "ptn-a": ["assessor"], "ptn-b": ["grant_officer"]}), s)
    assert both.has_in("ptn-a", Role.ASSESSOR) and not both.has_in("ptn-a", Role.GRANT_OFFICER)
    assert both.has_in("ptn-b", Role.GRANT_OFFICER) and not both.has_in("ptn-b", Role.ASSESSOR)
    assert both.partnerships_with(Role.GRANT_OFFICER) == ["ptn-b"]
    assert not both.in_partnership("ptn-c")


def test_a_programme_wide_manager_is_a_manager_everywhere_and_nothing_more():
    s = settings()
    wide = authenticate(issue_token(SECRET, s.jwt_issuer, "m", ["programme_manager", "grant_officer", "assessor"],
                                    partnership_roles={"ptn-b": ["grant_officer"]}, programme=True), s)
    assert wide.has_in("ptn-a", Role.PROGRAMME_MANAGER) and wide.has_in("ptn-b", Role.GRANT_OFFICER)
    # his other staff roles are held where partnership_roles says, as anybody's
    assert not wide.has_in("ptn-a", Role.GRANT_OFFICER) and not wide.has_in("ptn-a", Role.ASSESSOR)
    assert not wide.has(Role.ASSESSOR)


def test_a_staff_role_in_the_flat_claim_acts_in_no_partnership():
    s = settings()
    flat = jwt.encode({"sub": "o", "iss": s.jwt_issuer, "aud": [audience_of("grants")], "exp": int(time.time()) + 60,
                       "roles": ["grant_officer"], "partnerships": ["ptn-a"]}, SECRET, algorithm="HS256")
    who = authenticate(flat, s)
    assert not who.has(Role.GRANT_OFFICER) and not who.has_in("ptn-a", Role.GRANT_OFFICER)
    assert not who.in_partnership("ptn-a")


def test_a_participant_role_is_not_held_in_a_partnership():
    s = settings()
    assert refused(issue_token(SECRET, s.jwt_issuer, "v", ["visitor"], partnership_roles={"ptn-a": ["visitor"]}),
                   s) == "invalid bearer token"


class KeySet:
    """An identity provider's JWKS endpoint on a real local HTTP server, which counts the
    fetches; `failing` makes it answer 503, `keys` may be changed (a rotation)."""

    def __init__(self, *keys):
        self.keys, self.fetches, self.failing = list(keys), 0, False
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                owner.fetches += 1
                if owner.failing:
                    self.send_response(503)
                    self.end_headers()
                    return
                body = json.dumps({"keys": [owner.jwk(kid, key) for kid, key in owner.keys]}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/certs"

    @staticmethod
    def jwk(kid, key) -> dict:
        algorithm = jwt.algorithms.RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else jwt.algorithms.ECAlgorithm
        return {**json.loads(algorithm.to_jwk(key.public_key())), "kid": kid, "use": "sig"}


def idp_token(key, kid: str, **claims) -> str:
    now = int(time.time())
    body = {"sub": "idp-user", "iss": IDP, "aud": audience_of("grants"), "iat": now, "exp": now + 300,
            "roles": ["grant_officer"], "partnership_roles": {"ptn-1": ["grant_officer"]}, **claims}
    algorithm = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
    return jwt.encode(body, key, algorithm=algorithm, headers={"kid": kid})


@pytest.fixture(scope="module")
def identity_provider():
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    keys = KeySet(("r1", rsa_key), ("e1", ec_key))
    yield keys, rsa_key, ec_key
    keys.server.shutdown()


def test_an_identity_providers_tokens_are_verified_against_its_key_set(identity_provider):
    keys, rsa_key, ec_key = identity_provider
    s = settings(jwt_issuer=IDP, jwt_jwks_url=keys.url)
    for key, kid in ((rsa_key, "r1"), (ec_key, "e1")):
        who = authenticate(idp_token(key, kid), s)
        assert who.subject == "idp-user" and who.in_partnership("ptn-1") and not who.in_partnership("ptn-2")
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused(idp_token(stranger, "r1"), s)  # signed by a key the provider does not publish
    refused(idp_token(rsa_key, "r1", iss="https://elsewhere.example"), s)
    refused(idp_token(rsa_key, "r1", aud=audience_of("applications")), s)


def test_with_an_identity_provider_the_shared_secret_signs_nothing(identity_provider):
    keys, _, _ = identity_provider
    s = settings(jwt_issuer=IDP, jwt_jwks_url=keys.url)
    refused(issue_token(SECRET, IDP, "u", ["programme_manager"], programme=True), s)
    dev = issue_token(SECRET, DEV_ISSUER, "d", ["visitor"])
    assert authenticate(dev, settings(jwt_issuer=IDP, jwt_jwks_url=keys.url, dev_tokens=True)).subject == "d"


def test_unknown_key_ids_fetch_the_key_set_at_most_once_per_interval(identity_provider):
    _, rsa_key, ec_key = identity_provider
    keys = KeySet(("r1", rsa_key))
    try:
        s = settings(jwt_issuer=IDP, jwt_jwks_url=keys.url, jwt_jwks_refetch_seconds=60)
        assert authenticate(idp_token(rsa_key, "r1"), s).subject == "idp-user"
        for n in range(20):  # a stranger's tokens, each naming a key the provider does not publish
            refused(idp_token(ec_key, f"unknown-{n}"), s)
        assert keys.fetches == 1
        # nor while the provider fails: a failed fetch counts too
        down = KeySet(("r1", rsa_key))
        down.failing = True
        s_down = settings(jwt_issuer=IDP, jwt_jwks_url=down.url, jwt_jwks_refetch_seconds=60)
        for n in range(20):
            refused(idp_token(rsa_key, "r1"), s_down)
        assert down.fetches == 1
        down.server.shutdown()
    finally:
        keys.server.shutdown()


def test_a_rotated_key_is_fetched_once_the_interval_has_passed_and_a_withdrawn_one_refused(identity_provider):
    _, rsa_key, ec_key = identity_provider
    keys = KeySet(("r1", rsa_key))
    interval = 0.5
    try:
        s = settings(jwt_issuer=IDP, jwt_jwks_url=keys.url, jwt_jwks_refetch_seconds=interval)
        assert authenticate(idp_token(rsa_key, "r1"), s).subject == "idp-user"
        keys.keys = [("e2", ec_key)]  # the provider rotates: r1 withdrawn, e2 new
        refused(idp_token(ec_key, "e2"), s)  # within the interval: not fetched again
        assert keys.fetches == 1
        time.sleep(interval * 1.2)  # the interval is the rule under test, not a wait for luck
        assert authenticate(idp_token(ec_key, "e2"), s).subject == "idp-user"
        assert keys.fetches == 2
        refused(idp_token(rsa_key, "r1"), s)  # the withdrawn key no longer signs
    finally:
        keys.server.shutdown()
