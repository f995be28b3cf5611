"""Push access: path token, allow-list keyed by token fingerprint, and the setting's check."""

from __future__ import annotations

import hashlib

import pytest

from app.push.access import PushAccess, token_fingerprint
from app.settings import SettingsError, load_settings

TOKEN = "camera-token-0123456789"
OTHER = "another-token-abcdefgh"


def test_fingerprint_is_the_sha256_prefix() -> None:
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    assert token_fingerprint(TOKEN) == digest[:12]
    assert token_fingerprint(TOKEN, 64) == digest


def test_tokens_without_an_entry_push_from_anywhere() -> None:
    access = PushAccess((TOKEN, OTHER), {token_fingerprint(TOKEN): ("10.1.0.0/16",)})
    assert access.token_ok(TOKEN) and access.token_ok(OTHER)
    assert not access.token_ok("") and not access.token_ok(TOKEN + "x")
    assert access.address_ok(OTHER, "203.0.113.9")
    assert access.address_ok(TOKEN, "10.1.2.3")
    assert access.address_ok(TOKEN, "::ffff:10.1.2.3")  # IPv4-mapped, as dual-stack sockets give
    assert not access.address_ok(TOKEN, "10.2.0.1")
    assert not access.address_ok(TOKEN, "::1")
    assert not access.address_ok(TOKEN, "not an address")
    assert not access.address_ok(TOKEN, None)


def test_entries_of_any_prefix_length_and_case_combine() -> None:
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    access = PushAccess(
        (TOKEN,), {digest[:8].upper(): ["192.168.0.0/24"], digest: ["fd00::/8", "127.0.0.1"]}
    )
    assert access.address_ok(TOKEN, "192.168.0.77")
    assert access.address_ok(TOKEN, "fd00::5")
    assert access.address_ok(TOKEN, "127.0.0.1")
    assert not access.address_ok(TOKEN, "127.0.0.2")


def test_an_entry_for_no_token_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    PushAccess((TOKEN,), {"deadbeefdead": ["10.0.0.0/8"]})
    assert "push allow-list entry deadbeefdead matches no configured token" in caplog.text


def test_the_setting_refuses_a_raw_token_as_key_without_echoing_it() -> None:
    env = {"FACEQ_PUSH_ALLOW": f'{{"{TOKEN}": ["10.0.0.0/8"]}}'}
    with pytest.raises(SettingsError) as caught:
        load_settings(env, config_path=None)
    assert "keys must be 8-64 hex digits of sha256(token)" in str(caught.value)
    assert TOKEN not in str(caught.value)
    fingerprint = token_fingerprint(TOKEN)
    settings = load_settings({"FACEQ_PUSH_ALLOW": f"{{{fingerprint}: [10.0.0.0/8]}}"})
    assert settings.push_allow == {fingerprint: ("10.0.0.0/8",)}
