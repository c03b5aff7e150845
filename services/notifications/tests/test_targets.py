"""Which webhook targets are refused (server-side request forgery), without I/O: the resolver
is injected, because this machine has no DNS a test controls."""

from __future__ import annotations

import ipaddress
from types import SimpleNamespace

import pytest

from notifications import targets

STRICT = SimpleNamespace(webhook_allow_http=False, webhook_allowed_networks="", webhook_resolve_timeout_seconds=1.0)


def resolving_to(*addresses: str):
    async def resolve(host: str, port: int) -> list[str]:
        return list(addresses)
    return resolve


async def unresolvable(host: str, port: int) -> list[str]:
    raise OSError(-2, "Name or service not known")


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "192.168.0.9", "169.254.169.254", "0.0.0.0",
    "100.64.0.1", "224.0.0.1", "240.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fc00::1", "ff02::1",
    "::ffff:127.0.0.1", "::ffff:8.8.8.8", "2001:db8::1", "2002:7f00:1::1"])
def test_non_global_addresses_are_refused(address):
    assert targets.refused(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111"])
def test_global_addresses_pass(address):
    assert not targets.refused(ipaddress.ip_address(address))


def test_the_operators_allow_list_opens_exactly_its_networks():
    allowed = targets.networks("127.0.0.1/32, 10.20.0.0/16")
    assert not targets.refused(ipaddress.ip_address("127.0.0.1"), allowed)
    assert not targets.refused(ipaddress.ip_address("10.20.3.4"), allowed)
    assert targets.refused(ipaddress.ip_address("127.0.0.2"), allowed)
    assert targets.refused(ipaddress.ip_address("10.21.0.1"), allowed)
    with pytest.raises(ValueError):
        targets.networks("10.0.0.0/33")


async def test_a_public_name_is_pinned_to_the_address_checked():
    target = await targets.checked("https://hooks.example.org:8443/in?x=1", STRICT, resolving_to("93.184.216.34"))
    assert target.url == "https://93.184.216.34:8443/in?x=1"
    assert (target.host, target.sni) == ("hooks.example.org:8443", "hooks.example.org")


async def test_a_name_resolving_to_a_private_address_is_refused():
    with pytest.raises(targets.RefusedTarget):
        await targets.checked("https://crm.example.org/hook", STRICT, resolving_to("10.0.0.7"))
    # every address counts: one public answer does not launder a private one
    with pytest.raises(targets.RefusedTarget):
        await targets.checked("https://crm.example.org/hook", STRICT, resolving_to("93.184.216.34", "127.0.0.1"))


async def test_http_only_where_the_operator_allows_it():
    with pytest.raises(targets.RefusedTarget, match="https"):
        await targets.checked("http://crm.example.org/hook", STRICT, resolving_to("93.184.216.34"))
    local = SimpleNamespace(**{**vars(STRICT), "webhook_allow_http": True, "webhook_allowed_networks": "127.0.0.1/32"})
    target = await targets.checked("http://127.0.0.1:8080/hook", local, unresolvable)
    assert (target.url, target.host, target.sni) == ("http://127.0.0.1:8080/hook", "127.0.0.1:8080", None)


async def test_literal_addresses_are_judged_without_resolving_and_names_that_do_not_resolve_are_unresolved():
    for url in ("https://127.0.0.1/", "https://[::1]/", "https://[fe80::1]/", "https://169.254.169.254/latest",
                "https://[::ffff:10.0.0.1]/"):
        with pytest.raises(targets.RefusedTarget):
            await targets.checked(url, STRICT, resolving_to("93.184.216.34"))
    with pytest.raises(targets.Unresolved):
        await targets.checked("https://nowhere.example.org/", STRICT, unresolvable)
