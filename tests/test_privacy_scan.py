"""The leak audit's parts: every spelling of an address is found, the capture reader agrees
with scapy's full dissection, embeddings are recognised by shape, and a value split
across SQLite overflow pages is still found."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3

import pytest
from scapy.layers.dot11 import Dot11, Dot11Elt
from scapy.utils import PcapReader

from edge.privacy.needles import (
    MIN_SSID_BYTES,
    Needle,
    NeedleSet,
    add_address,
    add_ssid,
    capture_identifiers,
    dot11_identifiers,
    identifier_needles,
)
from edge.privacy.scan import Scanner
from tests.support.privacy_run import CAPTURES

pytestmark = pytest.mark.system

PHONE = bytes.fromhex("3c2eff1a9b47")
OTHER = bytes.fromhex("3c2eff1a9b48")


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    needles = NeedleSet()
    add_address(needles, PHONE, "address #0")
    add_ssid(needles, b"CafeCorner-5G", "SSID #0")
    return Scanner(needles)


SPELLINGS = {
    "colon upper": b"3C:2E:FF:1A:9B:47",
    "colon mixed": b"3c:2E:fF:1a:9B:47",
    "dashes": b"3c-2e-ff-1a-9b-47",
    "bare": b"3C2EFF1A9B47",
    "dotted": b"3c2e.ff1a.9b47",
    "raw": PHONE,
    "decimal": str(int.from_bytes(PHONE, "big")).encode(),
    "base64": base64.b64encode(PHONE),
    "sha256 of raw, hex upper": hashlib.sha256(PHONE).hexdigest().upper().encode(),
    "md5 of colon text, hex": hashlib.md5(b"3c:2e:ff:1a:9b:47").hexdigest().encode(),
    "sha1 of raw, raw": hashlib.sha1(PHONE).digest(),
    "sha256 of upper bare, raw": hashlib.sha256(b"3C2EFF1A9B47").digest(),
}


@pytest.mark.parametrize("spelling", SPELLINGS.values(), ids=SPELLINGS.keys())
def test_every_spelling_of_an_address_is_found(scanner, spelling):
    findings = scanner.scan_bytes("log", b'{"note": "seen ' + spelling + b' at the door"}')
    assert findings and {f.kind for f in findings} <= {"address", "address-hash"}
    assert all(f.offset == 15 for f in findings)
    assert all("3c" not in f.label.lower() for f in findings)   # labels never say it


@pytest.mark.parametrize("haystack", [
    OTHER.hex(":").encode(), PHONE[:5], b"3c:2e:ff:1a:9b",
    hashlib.sha256(OTHER).hexdigest().encode(),
    b"cafecorner-5g",                      # SSIDs are matched exactly
])
def test_near_misses_are_not_findings(scanner, haystack):
    assert scanner.scan_bytes("log", b"x " + haystack + b" y") == []


def test_ssids_shorter_than_the_minimum_are_not_needles():
    needles = NeedleSet()
    assert not add_ssid(needles, b"test"[:MIN_SSID_BYTES - 1], "SSID #0")
    assert not add_ssid(needles, b"\x00" * 8, "SSID #1")
    assert add_ssid(needles, b"Coherer", "SSID #2") and len(needles) == 1
    with pytest.raises(ValueError):
        Needle(b"abc", "ssid", "too short")


def _scapy_identifiers(path, limit: int):
    """The same facts, from scapy's full dissection."""
    addresses, ssids = set(), set()
    with PcapReader(str(path)) as reader:
        for _, packet in zip(range(limit), reader, strict=False):
            dot11 = packet.getlayer(Dot11)
            if dot11 is None:
                continue
            for field in ("addr1", "addr2", "addr3", "addr4"):
                value = getattr(dot11, field, None)
                if value and dot11.fields.get(field) is not None:
                    raw = bytes.fromhex(value.replace(":", ""))
                    if not raw[0] & 1:
                        addresses.add(raw)
            element = packet.getlayer(Dot11Elt)
            if dot11.type == 0 and dot11.subtype in (0, 2, 4, 5, 8) and element is not None \
                    and element.ID == 0 and element.info:
                ssids.add(bytes(element.info))
    return addresses, ssids


@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_capture_reader_agrees_with_scapy_dissection(path):
    from scapy.utils import RawPcapReader

    limit = 300
    mine = set()
    my_ssids = set()
    with RawPcapReader(str(path)) as reader:
        for _, (data, _meta) in zip(range(limit), reader, strict=False):
            header = int.from_bytes(data[2:4], "little")
            addresses, ssid = dot11_identifiers(data[header:])
            mine.update(addresses)
            if ssid:
                my_ssids.add(ssid)
    addresses, ssids = _scapy_identifiers(path, limit)
    assert mine == addresses and my_ssids == ssids


def test_all_captures_hold_thousands_of_identifiers():
    found = capture_identifiers(CAPTURES)
    assert found.frames == 34_182 and len(found.addresses) > 2_500 and len(found.ssids) > 100
    needles = identifier_needles(found)
    assert needles.counts()["image"] >= 10


@pytest.mark.parametrize("document, caught", [
    ({"appearance": [0.01 * i + 0.5 for i in range(256)]}, True),
    ([[0.123] * 64], True),
    ({"reid": [0.5] * 63}, False),              # shorter than an embedding
    ({"counts": list(range(200))}, False),      # whole numbers: a histogram, not a vector
    ({"a": [0.5] * 40, "b": [0.5] * 40}, False),   # two short lists are not one long one
    ({"mixed": [0.5] * 100 + ["x"]}, True),    # 100 floats in a row: caught as text
])
def test_embeddings_are_recognised_by_shape(scanner, document, caught):
    findings = scanner.scan_json("mqtt t", json.dumps(document).encode())
    assert any(f.kind == "embedding" for f in findings) == caught


def test_a_printed_vector_in_a_log_is_an_embedding(scanner):
    line = "DEBUG reid: feature [" + " ".join(f"{0.01 * i:.4f}" for i in range(128)) + "]"
    assert [f.kind for f in scanner.scan_bytes("log", line.encode())] == ["embedding"]
    assert scanner.scan_bytes("log", b"DEBUG positions 1.5 2.5 3.5") == []


def test_blobs_and_split_values_in_a_database_are_found(scanner, tmp_path):
    """A long value is cut across overflow pages in the file: the raw search can miss a
    needle at a cut, the value-by-value search cannot."""
    colon = PHONE.hex(":").encode()
    missed_raw = 0
    # 6,000 bytes in a 4 KiB page: SQLite keeps ~1,900 in the row's page, the rest on an
    # overflow page; the needle is slid across that cut.
    for offset in range(1880, 1960, 2):
        path = tmp_path / f"cut-{offset}.db"
        with sqlite3.connect(path) as connection:
            connection.execute("pragma page_size = 4096")
            connection.execute("create table notes (body text)")
            body = b"." * offset + colon + b"." * (6000 - offset)
            connection.execute("insert into notes values (?)", (body.decode(),))
        raw = scanner.scan_bytes(str(path), path.read_bytes())
        logical = scanner.scan_database(path, str(path))
        assert any(f.kind == "address" for f in logical)
        missed_raw += not raw
    assert missed_raw > 0
    with sqlite3.connect(tmp_path / "blob.db") as connection:
        connection.execute("create table t (x blob)")
        connection.execute("insert into t values (?)", (b"\x01\x02\x03\x04",))
    assert [f.kind for f in scanner.scan_database(tmp_path / "blob.db", "db")] == ["blob"]
