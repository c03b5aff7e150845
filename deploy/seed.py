"""Loads a small, realistic data set into a running system through its public APIs:
a partnership, an open call with its budget, and host organisations with offers.
Prints and stores (.local/seed.json) the ids a newcomer needs for the README's journey."""

from __future__ import annotations

import json
import os
import sys
from datetime import date, timedelta
from pathlib import Path

import httpx

from cx_shared.auth import issue_token
from cx_shared.settings import ServiceSettings
from cx_shared.testing.consortium import consortium

APPLICATIONS = os.environ.get("APPLICATIONS_URL", "http://127.0.0.1:8001")
ROOT = Path(__file__).resolve().parents[1]

HOSTS = [
    ("Bavarian Photonics Cluster e.V.", "DE", "Munich", "cluster_organisation", None, ["electronics", "digital"],
     "Laser manufacturing and photonics for Industry 4.0", "electronics", "de"),
    ("Lyon Agri-Food Innovation Hub", "FR", "Lyon", "scaling_up_support_organisation", "innovation_hub",
     ["agri_food"], "Precision farming and food traceability pilots", "agri_food", "fr"),
    ("Tessile Prato Network", "IT", "Prato", "business_network_organisation", None, ["textile"],
     "Circular textiles and recycled fibres", "textile", "en"),
]


def headers(subject: str, *roles: str, org: str | None = None, programme: bool = False) -> dict[str, str]:
    s = ServiceSettings()
    token = issue_token(s.jwt_secret, s.jwt_issuer, subject, roles, organisation_id=org, programme=programme)
    return {"Authorization": f"Bearer {token}"}


def post(client: httpx.Client, path: str, body: dict, auth: dict) -> dict:
    response = client.post(path, json=body, headers=auth)
    if response.status_code >= 300:
        sys.exit(f"seed: POST {path} -> {response.status_code} {response.text}")
    return response.json()


def main() -> None:
    manager = headers("programme-manager", "programme_manager", programme=True)
    today = date.today()
    with httpx.Client(base_url=APPLICATIONS, timeout=20) as client:
        partnership = post(client, "/partnerships", {
            "name": "Photonics4Industry", "members": consortium(), "ecosystems": ["electronics", "digital"],
            "contact_email": "exchanges@photonics4industry.example.eu"}, manager)
        call = post(client, "/calls", {
            "partnership_id": partnership["partnership_id"], "title": "ClusterXchange call 2027",
            "opens_on": str(today), "closes_on": str(today + timedelta(days=240)),
            "budget_cents": 5_000_000, "assessment_mode": "automatic"}, manager)
        hosts, offers = [], []
        for name, country, city, kind, subtype, ecosystems, topic, ecosystem, lang in HOSTS:
            owner = f"host-{city.lower()}"
            org = post(client, "/organisations", {
                "legal_name": name, "country": country, "city": city, "organisation_type": kind, "subtype": subtype,
                "ecosystems": ecosystems, "roles": ["host"],
                "contact": {"name": f"Exchange desk {city}", "email": f"exchanges@{owner}.example.eu",
                            "language": lang}}, headers(owner, "host"))
            hosts.append({"organisation_id": org["organisation_id"], "owner": owner, "city": city})
            offer = post(client, "/offers", {
                "host_id": org["organisation_id"], "title": topic, "description": f"{topic} at {name}.",
                "ecosystem": ecosystem, "window_start": str(today + timedelta(days=20)),
                "window_end": str(today + timedelta(days=200)), "capacity": 3, "language": lang},
                headers(owner, "host", org=org["organisation_id"]))
            offers.append(offer["offer_id"])
    seed = {"partnership_id": partnership["partnership_id"], "call_id": call["call_id"], "hosts": hosts,
            "offers": offers}
    (ROOT / ".local").mkdir(exist_ok=True)
    (ROOT / ".local" / "seed.json").write_text(json.dumps(seed, indent=2))
    print(json.dumps(seed, indent=2))


if __name__ == "__main__":
    main()
