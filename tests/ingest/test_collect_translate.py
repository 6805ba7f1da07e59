"""The wire-format adapters alone (no server): identities of ID-Mapping 3.0, clock-skew correction, the
Segment context, the PostHog event split, lz-string decoding checked against the lz-string npm package."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compat_support import NODE_MODULES
from edupulse.ingest import posthog, segment, sensors
from edupulse.ingest.compat import MIN_SKEW_US, Clock
from edupulse.ingest.lzstring import LZStringError, decompress_from_base64
from edupulse.ingest.records import RecordError

NAMES = frozenset({"p"})


def one(record: dict[str, object]) -> dict[str, object]:
    [out] = sensors.translate(record, NAMES, None)
    return out


def test_sensors_web_sdk_identities_after_login() -> None:
    cookie = "18f0c-cookie"
    out = one({"type": "track", "event": "course_viewed", "distinct_id": "u-1", "anonymous_id": cookie,
               "login_id": "u-1", "identities": {"$identity_cookie_id": cookie, "$identity_login_id": "u-1",
                                                 "$identity_anonymous_id": cookie},
               "properties": {"$is_login_id": True, "$url": "https://a/b", "$utm_campaign": "spring"}})
    assert (out["distinct_id"], out["distinct_id_type"], out["identities"]) == ("u-1", "login_id",
                                                                                 {"anonymous_id": cookie})
    assert out["properties"] == {"$url": "https://a/b", "$utm_campaign": "spring", "url": "https://a/b",
                                 "utm_campaign": "spring"}


def test_sensors_id_mapping_bind_with_custom_and_device_keys() -> None:
    out = one({"type": "track_id_bind", "event": "$BindID", "distinct_id": "$identity_mobile+138",
               "identities": {"$identity_mobile": "138", "$identity_android_id": "A-1", "student_no": "S 9",
                              "$identity_mp_unionid": "o-9"}})
    assert out["event"] == "$BindID"
    assert (out["distinct_id_type"], out["distinct_id"]) == ("mobile", "138")  # not "$identity_mobile+138"
    assert out["identities"] == {"device_id": "A-1", "student_no": "S 9", "wechat_unionid": "o-9"}


def test_sensors_signup_unbind_and_items() -> None:
    signup = one({"type": "track_signup", "event": "$SignUp", "distinct_id": "u-1", "original_id": "c-1"})
    assert signup["identities"] == {"anonymous_id": "c-1"}
    assert signup["distinct_id_type"] == "login_id"
    unbind = one({"type": "track_id_unbind", "event": "$UnbindID", "distinct_id": "$identity_mobile+138",
                  "identities": {"$identity_mobile": "138"}})
    assert unbind["properties"] == {"$unbind": "mobile:138"}
    assert one({"type": "item_delete", "item_type": "course", "item_id": "C-1"})["properties"] == {"$deleted": True}
    with pytest.raises(RecordError, match="same as distinct_id"):
        one({"type": "track_signup", "distinct_id": "u-1", "original_id": "u-1"})


@pytest.mark.parametrize(("name", "expected"), [("Spring English", "spring_english"), ("春季 English!", "english"),
                                                ("k12_north", "k12_north")])
def test_project_slug(name: str, expected: str) -> None:
    assert sensors.project_slug(name) == expected
    assert {name, expected} <= sensors.project_names(name)


def test_clock_skew_threshold_and_rounding() -> None:
    received = 1_800_000_000_000_000
    stamp = {"timestamp": "2027-01-15T08:00:00.250Z"}
    base = posthog.parse_time(stamp["timestamp"], "t", Clock.UTC) / 1000
    assert Clock(received, received - (MIN_SKEW_US - 1)).time(stamp) == base  # network time: left alone
    assert Clock(received, received - 600_400_000).time(stamp) == base + 600_000  # rounded to the second
    assert Clock(received, received - 600_300_000).time(stamp) == Clock(received, received - 599_800_000).time(stamp)
    assert Clock(received, None).time({"offset": 1500}) == (received - 1_500_000) / 1000
    assert Clock(received, None).time({}) is None


def test_posthog_identify_splits_into_link_event_and_profile() -> None:
    records = list(posthog.translate({"event": "$identify", "distinct_id": "u-1", "$set": {"grade": "G5"},
                                      "properties": {"$anon_distinct_id": "a-1", "token": "wk", "$os": "Linux"}},
                                     Clock(0, None)))
    assert [r["type"] for r in records] == ["identify", "track", "profile_set"]
    assert (records[0]["distinct_id_type"], records[0]["anonymous_id"]) == ("login_id", "a-1")
    assert records[1]["properties"] == {"$os": "Linux"}


def test_segment_context_and_rudderstack_traits() -> None:
    [page] = segment.translate({"type": "page", "anonymousId": "a", "name": "Home", "properties": {"title": "T"},
                                "context": {"page": {"url": "https://x"}, "campaign": {"source": "wx", "name": "c"},
                                            "library": {"name": "analytics-python"}}}, Clock(0, None))
    assert page["event"] == "$pageview"
    assert page["properties"] == {"url": "https://x", "utm_source": "wx", "utm_campaign": "c",
                                  "$lib": "analytics-python", "title": "T", "name": "Home"}
    identify = list(segment.translate({"type": "identify", "userId": "u", "context": {"traits": {"grade": "G1"}}},
                                      Clock(0, None)))
    assert identify == [{"type": "profile_set", "distinct_id": "u", "distinct_id_type": "login_id",
                         "properties": {"grade": "G1"}}]


def test_lzstring_rejects_what_is_not_its_output() -> None:
    for bad in ("", "!!", "A"):
        with pytest.raises(LZStringError):
            decompress_from_base64(bad)


@pytest.fixture(scope="module")
def lz_compress() -> object:
    node = shutil.which("node")
    if node is None or not (NODE_MODULES / "lz-string").is_dir():
        pytest.skip("needs node and the lz-string npm package (make browser-deps)")

    def compress(texts: list[str]) -> list[str]:
        script = ("const L = require('lz-string'); const texts = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
                  "process.stdout.write(JSON.stringify(texts.map(t => L.compressToBase64(t))))")
        out = subprocess.run([node, "-e", script], input=json.dumps(texts), capture_output=True, text=True,
                             check=True, cwd=NODE_MODULES.parent, timeout=60)
        return json.loads(out.stdout)  # type: ignore[no-any-return]

    return compress


@settings(max_examples=1, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=300), min_size=50, max_size=50))
def test_lzstring_matches_the_npm_package(lz_compress: object, texts: list[str]) -> None:
    compressed = lz_compress(texts)  # type: ignore[operator]
    assert [decompress_from_base64(c) for c in compressed] == texts
