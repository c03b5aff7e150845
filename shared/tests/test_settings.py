"""A service refuses to start with a token secret anyone can read, except in local development."""

import pytest

from cx_shared.settings import DEVELOPMENT_SECRET, ServiceSettings


@pytest.mark.parametrize("secret", [DEVELOPMENT_SECRET, "change-me-in-production", "short-but-private", ""])
def test_a_published_or_short_secret_is_refused_outside_local_development(secret):
    for dev_tokens, host in ((False, "127.0.0.1"), (True, "0.0.0.0"), (False, "0.0.0.0")):
        refusals = ServiceSettings(jwt_secret=secret, dev_tokens=dev_tokens, http_host=host).refusals()
        assert refusals and "JWT_SECRET" in refusals[0]


def test_local_development_may_use_the_default_and_production_a_long_private_secret():
    assert ServiceSettings(dev_tokens=True, http_host="127.0.0.1").refusals() == []
    assert ServiceSettings(dev_tokens=True, http_host="localhost").refusals() == []
    assert ServiceSettings(jwt_secret="k" * 16 + "private-enough-now", http_host="0.0.0.0").refusals() == []


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "api.example.eu"])
def test_development_tokens_are_refused_on_an_address_others_reach_even_with_a_strong_secret(host):
    refusals = ServiceSettings(jwt_secret="k" * 16 + "private-enough-now", dev_tokens=True, http_host=host).refusals()
    assert any("DEV_TOKENS" in r and "HTTP_HOST" in r for r in refusals), refusals
    for loopback_host in ("127.0.0.1", "::1", "localhost"):
        assert ServiceSettings(jwt_secret="k" * 34, dev_tokens=True, http_host=loopback_host).refusals() == []


def test_topics_keep_events_without_time_limit_unless_told_otherwise(monkeypatch):
    assert ServiceSettings().topic_retention_ms == -1
    monkeypatch.setenv("TOPIC_RETENTION_MS", str(30 * 24 * 3600 * 1000))
    assert ServiceSettings().topic_retention_ms == 2_592_000_000


def test_dead_letters_are_kept_thirty_days_unless_told_otherwise(monkeypatch):
    assert ServiceSettings().dead_letter_retention_ms == 30 * 24 * 3600 * 1000
    monkeypatch.setenv("DEAD_LETTER_RETENTION_MS", "-1")
    assert ServiceSettings().dead_letter_retention_ms == -1


@pytest.mark.parametrize("setting", ["TOPIC_RETENTION_MS", "DEAD_LETTER_RETENTION_MS"])
@pytest.mark.parametrize("retention", ["0", "-2", "a week"])
def test_a_retention_that_is_not_a_duration_is_refused_naming_the_setting(monkeypatch, retention, setting):
    monkeypatch.setenv(setting, retention)
    with pytest.raises(ValueError, match=f"(?i){setting}"):
        ServiceSettings()
