"""Attribution on a tiny hand-built history, on DuckDB and ClickHouse: every model against hand-computed
credits, the lookback window, conversions without touches, anonymous touches before a login, days cut in
the project's time zone, ad spend (cost, CAC, ROI), $other, hostile names, errors; the credited totals
always add up to the conversions and the revenue."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from edupulse.importer.spend import SPEND_SCHEMA
from edupulse.queries.errors import QueryError
from edupulse.store.base import WriteBatch
from engines import History, csv_of, table_of

HOSTILE = "渠道'); DROP TABLE events; --\""
MODELS = ["first_touch", "last_touch", "linear", "position_based", "time_decay"]


def sh(text: str) -> str:
    return f"2026-{text}+08:00"


def track(who: str, event: str, time: str, login: bool = True, **properties: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"type": "track", "event": event, "distinct_id": who, "time": sh(time),
                              "properties": properties}
    if login:
        record["distinct_id_type"] = "login_id"
    return record


HISTORY: list[dict[str, Any]] = [
    # alice clicks an ad anonymously, signs in, then touches three more channels around two orders
    track("dev-a", "ad_click", "09-01T10:00:00", login=False, channel="douyin"),
    {"type": "identify", "distinct_id": "alice", "anonymous_id": "dev-a", "time": sh("09-01T11:00:00")},
    track("alice", "page_view", "09-03T10:00:00", utm_source="baidu"),
    track("alice", "lead_created", "09-04T10:00:00", channel="referral"),
    track("alice", "order_paid", "09-05T10:00:00", amount=1000),
    track("alice", "page_view", "09-06T09:00:00", utm_source="wechat"),
    track("alice", "order_paid", "09-06T10:00:00", amount=200),
    # bob's only touch is 35 days before his order: outside the 30-day lookback
    track("bob", "page_view", "08-01T12:00:00", utm_source="baidu"),
    track("bob", "order_paid", "09-05T12:00:00", amount=500),
    # carol: one touch; her test order does not count
    track("carol", "ad_click", "09-02T10:00:00", channel="douyin"),
    track("carol", "order_paid", "09-02T11:00:00", amount=300),
    track("carol", "order_paid", "09-02T11:30:00", amount=9999, order_type="test"),
    # dave: two touches, the second at the very instant of the order
    track("dave", "page_view", "09-03T10:00:00", utm_source="baidu"),
    track("dave", "ad_click", "09-03T12:00:00", channel="douyin"),
    track("dave", "order_paid", "09-03T12:00:00", amount=100),
    # erin: a page view without utm_source is no touch
    track("erin", "page_view", "09-04T08:00:00"),
    track("erin", "order_paid", "09-04T09:00:00", amount=50),
    # frank orders at 00:30 on 6 September local time (16:30 on the 5th in UTC); no touch
    track("frank", "order_paid", "09-06T00:30:00", amount=70),
    # grace: hostile channel values and property names
    track("grace", "ad_click", "09-02T08:00:00", channel=HOSTILE, **{"it's\"; --": "x'y"}),
    track("grace", HOSTILE, "09-02T09:00:00", amount=5),
]

SPEND = [
    (dt.date(2026, 9, 1), "douyin", "autumn", 600.0),
    (dt.date(2026, 9, 2), "baidu", "search", 200.0),
    (dt.date(2026, 8, 1), "douyin", "summer", 999.0),  # before the range
    (dt.date(2026, 9, 3), "wechat", "moments", 100.0),
    (dt.date(2026, 9, 3), "google", "search", 50.0),  # no conversions
]

TOUCHES = [
    {"event": "ad_click", "channel": "channel"},
    {"event": "page_view", "channel": "utm_source", "filters": [{"property": "utm_source", "op": "is_set"}]},
    {"event": "lead_created", "channel": "channel"},
]
CONVERSION = {"event": "order_paid", "value": "amount",
              "filters": [{"property": "order_type", "op": "neq", "value": "test"}]}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    history = History(tmp_path_factory.mktemp("attribution"), HISTORY, name="Attribution School")
    project = history.project.id
    rows = {"project_id": [project] * len(SPEND), "date": [r[0] for r in SPEND], "channel": [r[1] for r in SPEND],
            "campaign": [r[2] for r in SPEND], "cost": [r[3] for r in SPEND], "impressions": [None] * len(SPEND),
            "clicks": [None] * len(SPEND)}
    history.platform.store.write(WriteBatch(spend=pa.table(rows, schema=SPEND_SCHEMA)))
    yield history
    history.close()


def attribution(loaded: History, **query: Any) -> dict[str, Any]:
    query.setdefault("date_range", {"date_from": "2026-09-01", "date_to": "2026-09-07"})
    query.setdefault("conversion", CONVERSION)
    query.setdefault("touches", TOUCHES)
    result = loaded.both({"kind": "attribution", **query})
    check_totals(result)
    return result


def check_totals(result: dict[str, Any]) -> None:
    """Every model's credits add up to the conversions and the revenue."""
    totals = result["totals"]
    for m in result["models"]:
        assert sum(c["models"][m]["conversions"] for c in result["channels"]) == pytest.approx(totals["conversions"])
        assert sum(c["models"][m]["revenue"] for c in result["channels"]) == pytest.approx(totals["revenue"])
        assert totals["models"][m]["conversions"] == pytest.approx(totals["conversions"])
        assert totals["models"][m]["revenue"] == pytest.approx(totals["revenue"])


def credit(result: dict[str, Any], model: str) -> dict[str, tuple[Any, Any]]:
    """Channel -> (credited conversions, credited revenue) of one model, channels with no credit left out."""
    out = {}
    for c in result["channels"]:
        entry = c["models"][model]
        if entry["conversions"] or entry["revenue"]:
            out[c["channel"]] = (pytest.approx(entry["conversions"]), pytest.approx(entry["revenue"]))
    return out


def test_first_and_last_touch(loaded: History) -> None:
    result = attribution(loaded)
    assert result["models"] == MODELS
    assert result["totals"]["conversions"] == 7
    assert result["totals"]["revenue"] == 2220
    assert credit(result, "first_touch") == {"douyin": (3, 1500), "baidu": (1, 100), "(none)": (3, 620)}
    assert credit(result, "last_touch") == {"douyin": (2, 400), "referral": (1, 1000), "wechat": (1, 200),
                                            "(none)": (3, 620)}
    touched = {c["channel"]: c["conversions_touched"] for c in result["channels"]}
    assert touched == {"douyin": 4, "baidu": 3, "referral": 2, "wechat": 1, "(none)": 3}


def test_linear_and_position_based(loaded: History) -> None:
    result = attribution(loaded, models=["linear", "position_based"])
    assert credit(result, "linear") == {
        "douyin": (1 / 3 + 1 / 4 + 1 + 1 / 2, 1000 / 3 + 200 / 4 + 300 + 100 / 2),
        "baidu": (1 / 3 + 1 / 4 + 1 / 2, 1000 / 3 + 200 / 4 + 100 / 2),
        "referral": (1 / 3 + 1 / 4, 1000 / 3 + 200 / 4),
        "wechat": (1 / 4, 200 / 4),
        "(none)": (3, 620),
    }
    # 40/20/40 with three touches, 40/10/10/40 with four, 50/50 with two, all to a single touch
    assert credit(result, "position_based") == {
        "douyin": (0.4 + 0.4 + 1 + 0.5, 400 + 80 + 300 + 50),
        "baidu": (0.2 + 0.1 + 0.5, 200 + 20 + 50),
        "referral": (0.4 + 0.1, 400 + 20),
        "wechat": (0.4, 80),
        "(none)": (3, 620),
    }


def test_position_based_shares_are_configurable(loaded: History) -> None:
    result = attribution(loaded, models=["position_based"], position_based={"first": 0.3, "last": 0.5})
    assert credit(result, "position_based") == {
        # two touches (dave): 0.3 / 0.8 to the first, 0.5 / 0.8 to the last
        "douyin": (0.3 + 0.3 + 1 + 0.625, 300 + 60 + 300 + 62.5),
        "baidu": (0.2 + 0.1 + 0.375, 200 + 20 + 37.5),
        "referral": (0.5 + 0.1, 500 + 20),
        "wechat": (0.5, 100),
        "(none)": (3, 620),
    }


def test_time_decay(loaded: History) -> None:
    def shares(ages_days: list[float], half_life: float) -> list[float]:
        weights = [2 ** (-age / half_life) for age in ages_days]
        return [w / sum(weights) for w in weights]

    for half_life in (7, 0.5):
        result = attribution(loaded, models=["time_decay"], half_life_days=half_life)
        a1 = shares([4, 2, 1], half_life)  # douyin, baidu, referral before the order of 5 September
        a2 = shares([5, 3, 2, 1 / 24], half_life)  # ... and wechat, 6 September
        d = shares([2 / 24, 0], half_life)  # baidu, douyin
        assert credit(result, "time_decay") == {
            "douyin": (a1[0] + a2[0] + 1 + d[1], 1000 * a1[0] + 200 * a2[0] + 300 + 100 * d[1]),
            "baidu": (a1[1] + a2[1] + d[0], 1000 * a1[1] + 200 * a2[1] + 100 * d[0]),
            "referral": (a1[2] + a2[2], 1000 * a1[2] + 200 * a2[2]),
            "wechat": (a2[3], 200 * a2[3]),
            "(none)": (3, 620),
        }


def test_lookback_window(loaded: History) -> None:
    # one day: alice's lead of 4 September 10:00 is exactly one day before her first order and counts
    result = attribution(loaded, models=["first_touch"], lookback_days=1)
    firsts = credit(result, "first_touch")
    assert firsts["referral"] == (1, 1000)
    assert firsts["wechat"] == (1, 200)  # 6 September: the wechat view an hour before; the lead is 2 days old
    assert firsts["douyin"] == (1, 300)  # carol
    assert firsts["baidu"] == (1, 100)  # dave's view two hours before
    # 40 days: bob's view 35 days before his order now counts
    longer = attribution(loaded, models=["last_touch"], lookback_days=40)
    assert credit(longer, "last_touch")["baidu"] == (1, 500)
    assert credit(longer, "last_touch")["(none)"] == (2, 120)


def test_days_are_cut_in_the_project_time_zone(loaded: History) -> None:
    result = attribution(loaded, models=["last_touch"],
                         date_range={"date_from": "2026-09-02", "date_to": "2026-09-05"})
    # frank's order at 00:30 on the 6th (local) is outside; alice's second order too
    assert (result["totals"]["conversions"], result["totals"]["revenue"]) == (5, 1950)
    on_sixth = attribution(loaded, models=["last_touch"],
                           date_range={"date_from": "2026-09-06", "date_to": "2026-09-06"})
    assert (on_sixth["totals"]["conversions"], on_sixth["totals"]["revenue"]) == (2, 270)


def test_fixed_channel_names_and_touch_filters(loaded: History) -> None:
    touches = [{"event": "ad_click", "name": "ads"},
               {"event": "page_view", "channel": "utm_source",
                "filters": [{"property": "utm_source", "op": "eq", "value": "baidu"}]}]
    result = attribution(loaded, models=["last_touch", "first_touch"], touches=touches)
    # alice's second order: her wechat view is filtered out, so her last touch is baidu again
    assert credit(result, "last_touch") == {"ads": (2, 400), "baidu": (2, 1200), "(none)": (3, 620)}
    assert credit(result, "first_touch") == {"ads": (3, 1500), "baidu": (1, 100), "(none)": (3, 620)}


def test_conversion_without_value_counts_no_revenue(loaded: History) -> None:
    result = attribution(loaded, models=["linear"], conversion={"event": "order_paid"})
    assert result["totals"]["revenue"] == 0
    assert result["totals"]["conversions"] == 8  # the test order counts without the conversion filter


def test_spend_cost_cac_and_roi(loaded: History) -> None:
    result = attribution(loaded, models=["last_touch"], spend=True)
    channels = {c["channel"]: c for c in result["channels"]}
    assert channels["douyin"]["cost"] == 600
    assert channels["douyin"]["models"]["last_touch"] == {"conversions": 2, "revenue": 400, "cac": 300,
                                                          "roi": pytest.approx((400 - 600) / 600)}
    assert channels["baidu"]["cost"] == 200
    assert channels["baidu"]["models"]["last_touch"]["cac"] is None  # no conversion credited
    assert channels["google"]["models"]["last_touch"] == {"conversions": 0, "revenue": 0, "cac": None, "roi": -1}
    assert channels["(none)"]["cost"] == 0
    assert channels["(none)"]["models"]["last_touch"]["roi"] is None
    assert result["totals"]["cost"] == 950
    columns, rows = table_of(result)
    assert columns == ["channel", "conversions_touched", "cost", "last_touch_conversions", "last_touch_revenue",
                       "last_touch_cac", "last_touch_roi"]
    assert len(rows) == len(result["channels"])
    assert csv_of(result).startswith("channel,conversions_touched,cost,")


def test_channels_beyond_the_limit_are_other(loaded: History) -> None:
    result = attribution(loaded, models=["last_touch"], limit=2, spend=True)
    assert [c["channel"] for c in result["channels"]] == ["(none)", "douyin", "$other"]
    other = result["channels"][-1]
    assert other["models"]["last_touch"]["conversions"] == 2
    assert other["models"]["last_touch"]["revenue"] == 1200
    assert other["cost"] == 350  # baidu, wechat and google


def test_hostile_names_and_values(loaded: History) -> None:
    touches = [{"event": "ad_click", "channel": "channel"},
               {"event": "ad_click", "channel": "it's\"; --", "name": HOSTILE}]
    result = attribution(loaded, models=["linear"], touches=touches,
                         conversion={"event": HOSTILE, "value": "amount"},
                         filters=[{"property": "person.x'); DROP TABLE persons; --", "op": "is_not_set"}])
    assert result["totals"] == {"conversions": 1, "revenue": 5, "models": {"linear": {"conversions": 1,
                                                                                      "revenue": 5}}}
    assert credit(result, "linear") == {HOSTILE: (0.5, 2.5), "x'y": (0.5, 2.5)}


@pytest.mark.parametrize(("query", "message"), [
    ({"touches": []}, "touches"),
    ({"models": ["last_touch", "last_touch"]}, "named twice"),
    ({"models": ["u_shaped"]}, "models.0"),
    ({"position_based": {"first": 0.6, "last": 0.6}}, "add up to at most 1"),
    ({"lookback_days": 0}, "lookback_days"),
    ({"half_life_days": 0}, "half_life_days"),
    ({"conversion": {"event": "order_paid", "value": ""}}, "conversion.value"),
    ({"touches": [{"event": "ad_click", "channel": ""}]}, "touches.0.channel"),
    ({"conversion": {"event": "order_paid", "revenue": "amount"}}, "conversion.revenue: Extra inputs"),
])
def test_errors_name_the_field(loaded: History, query: dict[str, Any], message: str) -> None:
    body = {"kind": "attribution", "conversion": CONVERSION, "touches": TOUCHES, **query}
    with pytest.raises(QueryError, match=message):
        loaded.run(body)


def test_the_documented_example_runs(loaded: History, documented: dict[str, dict[str, Any]]) -> None:
    result = attribution(loaded, **{k: v for k, v in documented["attribution"].items() if k != "kind"})
    assert result["models"] == MODELS
