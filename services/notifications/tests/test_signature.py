"""The webhook signature a subscriber verifies."""

from notifications.signature import sign, verify_signature

BODY = b'{"id":"e1","data":{"total_cents":250000}}'


def test_a_signature_verifies_and_a_tampered_body_does_not():
    header = sign("whsec-1", 1_700_000_000, BODY)
    assert header.startswith("t=1700000000,v1=")
    assert verify_signature("whsec-1", header, BODY, tolerance=300, now=1_700_000_100)
    assert not verify_signature("whsec-1", header, BODY.replace(b"250000", b"250001"), 300, now=1_700_000_100)
    assert not verify_signature("whsec-2", header, BODY, 300, now=1_700_000_100)


def test_old_signatures_and_garbage_headers_are_rejected():
    header = sign("whsec-1", 1_700_000_000, BODY)
    assert not verify_signature("whsec-1", header, BODY, tolerance=300, now=1_700_000_301)
    assert not verify_signature("whsec-1", header.replace("t=1700000000", "t=1700000200"), BODY, 300,
                                now=1_700_000_200)  # the timestamp is signed too
    for garbage in ("", "v1=abc", "t=notanumber,v1=abc", "t=1700000000"):
        assert not verify_signature("whsec-1", garbage, BODY, 300, now=1_700_000_000)


def test_during_a_rotation_each_secret_in_force_verifies_and_no_other():
    header = sign(["whsec-new", "whsec-old"], 1_700_000_000, BODY)
    assert header.count("v1=") == 2 and header.startswith("t=1700000000,v1=")
    for secret in ("whsec-new", "whsec-old"):
        assert verify_signature(secret, header, BODY, 300, now=1_700_000_000)
    assert not verify_signature("whsec-other", header, BODY, 300, now=1_700_000_000)
