"""Keys: random per instance, in memory, rotated at local midnight with the old one
wiped; pseudonyms of two days cannot be linked."""

from __future__ import annotations

import hashlib
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from edge.wifi.anonymize import KEY_BYTES, Anonymizer, parse_mac, random_key

PHONE = bytes.fromhex("0a1b2c3d4e5f")
LAPTOP = bytes.fromhex("dcfb48dd c60b".replace(" ", ""))
PRAGUE = ZoneInfo("Europe/Prague")


def at(text: str, tz=PRAGUE) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=tz).timestamp()


class RecordingKeys:
    """A key factory that remembers every key object it handed out (to check wiping)."""

    def __init__(self) -> None:
        self.keys: list[bytearray] = []

    def __call__(self, size: int) -> bytearray:
        key = random_key(size)
        self.keys.append(key)
        return key


def test_two_instances_never_share_a_key():
    keys = RecordingKeys()
    first, second = Anonymizer(key_factory=keys), Anonymizer(key_factory=keys)
    first.advance(at("2024-03-15T10:00:00"))
    second.advance(at("2024-03-15T10:00:00"))
    assert keys.keys[0] != keys.keys[1] and len(keys.keys[0]) == KEY_BYTES
    assert first.pseudonym(PHONE) != second.pseudonym(PHONE)
    assert Anonymizer()._key_factory is random_key        # the default draws from the OS


def test_key_rotates_at_local_midnight_and_the_old_one_is_zeroed():
    keys = RecordingKeys()
    anonymizer = Anonymizer(timezone=PRAGUE, key_factory=keys)
    anonymizer.advance(at("2024-03-15T23:59:58"))
    monday = anonymizer.pseudonym(PHONE)
    assert anonymizer.pseudonym(PHONE) == monday            # stable within the day
    old_key = keys.keys[0]
    assert any(old_key)
    anonymizer.advance(at("2024-03-15T23:59:59.999"))
    assert anonymizer.generation == 1
    anonymizer.advance(at("2024-03-16T00:00:00"))
    assert anonymizer.generation == 2 and anonymizer.day == "2024-03-16"
    assert old_key == bytearray(KEY_BYTES)                  # wiped in place
    tuesday = anonymizer.pseudonym(PHONE)
    assert tuesday != monday


def test_pseudonyms_of_different_days_cannot_be_linked():
    """Across 200 devices, Monday's pseudonyms say nothing about Tuesday's: the best a
    holder of both lists can do is chance (a few coincidences among 2^20 values)."""
    anonymizer = Anonymizer(timezone=PRAGUE)
    devices = [bytes([2, 0, 0, 0, i >> 8, i & 0xFF]) for i in range(200)]
    anonymizer.advance(at("2024-03-15T12:00:00"))
    monday = [anonymizer.pseudonym(d) for d in devices]
    anonymizer.advance(at("2024-03-16T12:00:00"))
    tuesday = [anonymizer.pseudonym(d) for d in devices]
    assert sum(a == b for a, b in zip(monday, tuesday, strict=False)) <= 1
    assert len(set(monday) & set(tuesday)) <= 2
    # Nor is the relation between two devices kept (no shared offset or order).
    assert sorted(range(200), key=monday.__getitem__) != sorted(range(200), key=tuesday.__getitem__)


def test_time_never_goes_back_to_a_wiped_key():
    anonymizer = Anonymizer(timezone="UTC")
    anonymizer.advance(at("2024-03-16T00:00:05", ZoneInfo("UTC")))
    today = anonymizer.pseudonym(PHONE)
    anonymizer.advance(at("2024-03-15T23:59:59", ZoneInfo("UTC")))   # a late frame
    assert anonymizer.generation == 1 and anonymizer.pseudonym(PHONE) == today


def test_injected_clock_rotates_a_quiet_night():
    now = [at("2024-03-15T23:00:00")]
    anonymizer = Anonymizer(timezone=PRAGUE, clock=lambda: now[0])
    anonymizer.tick()
    assert anonymizer.day == "2024-03-15"
    now[0] = at("2024-03-16T00:00:01")
    anonymizer.tick()
    assert anonymizer.day == "2024-03-16" and anonymizer.generation == 2


def test_exclusions_follow_every_key():
    anonymizer = Anonymizer(exclude=[LAPTOP], timezone=PRAGUE)
    for day in ("2024-03-15", "2024-03-16", "2024-03-17"):
        anonymizer.advance(at(f"{day}T09:00:00"))
        assert anonymizer.is_excluded(anonymizer.pseudonym(LAPTOP))
        assert not anonymizer.is_excluded(anonymizer.pseudonym(PHONE))


def test_pseudonyms_are_truncated_keyed_hmacs_not_plain_hashes():
    anonymizer = Anonymizer(bits=20, key_factory=lambda n: bytearray(b"k" * n))
    anonymizer.advance(0.0)
    value = anonymizer.pseudonym(PHONE)
    assert 0 <= value < 2**20
    import hmac

    expected = int.from_bytes(hmac.digest(b"k" * 32, PHONE, "sha256")[:8], "big") >> 44
    assert value == expected
    for digest in (hashlib.sha256(PHONE).digest(), hashlib.md5(PHONE).digest()):
        assert value != int.from_bytes(digest[:8], "big") >> 44


def test_wipe_forgets_everything():
    keys = RecordingKeys()
    anonymizer = Anonymizer(key_factory=keys)
    anonymizer.advance(1e9)
    anonymizer.wipe()
    assert not anonymizer.has_key and keys.keys[0] == bytearray(KEY_BYTES)
    with pytest.raises(RuntimeError, match="no key"):
        anonymizer.pseudonym(PHONE)


@pytest.mark.parametrize("text", ["DC:FB:48:DD:C6:0B", "dc-fb-48-dd-c6-0b", "dcfb48ddc60b"])
def test_parse_mac_accepts_common_spellings(text):
    assert parse_mac(text) == LAPTOP


@pytest.mark.parametrize("text", ["dc:fb:48:dd:c6", "dc:fb:48:dd:c6:0g", "dc:fb-48:dd:c6:0b", ""])
def test_parse_mac_rejects_the_rest(text):
    with pytest.raises(ValueError, match="expected a MAC address"):
        parse_mac(text)


def test_bits_are_bounded():
    with pytest.raises(ValueError):
        Anonymizer(bits=4)


def test_a_far_future_time_stamp_does_not_hold_one_key_over_the_days_after_it():
    """Regression (review, r1_future_timestamp): one frame stamped 2090 moved the key's
    day to 2090, and as keys only moved forward, every later real day shared that key:
    one phone's pseudonym was the same on two days. A key serves one day, either way."""
    keys = RecordingKeys()
    anonymizer = Anonymizer(timezone=PRAGUE, key_factory=keys)
    seen = {}
    for when in ("2024-03-15T10:00:00", "2090-06-01T12:00:00", "2024-03-16T10:00:00",
                 "2024-03-17T10:00:00", "2024-03-16T11:00:00"):   # the last: a clock step back
        anonymizer.advance(at(when))
        seen[when] = (anonymizer.day, anonymizer.pseudonym(PHONE))
    assert [day for day, _ in seen.values()] == [
        "2024-03-15", "2090-06-01", "2024-03-16", "2024-03-17", "2024-03-16"]
    assert anonymizer.generation == 5 and len(keys.keys) == 5      # a new key each time
    assert all(key == bytearray(KEY_BYTES) for key in keys.keys[:-1])   # none kept to reuse
    assert len({pseudonym for _, pseudonym in seen.values()}) == 5
