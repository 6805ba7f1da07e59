"""The referral pack beyond its rate: the share of revenue referred persons bring (in all and per KOL) against
the simulator's truth and an independent reading of the store, and the referral tree of a person on a
hand-built history with a cycle (both engines) and on the simulated school."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from edupulse.packs.headline import PackError
from edupulse.packs.referral_tree import ReferralGraph, ReferralNode, build, referral_graph, referral_tree
from engines import History, require_chdb

PACK_NOW = dt.datetime(2025, 6, 1, 4, tzinfo=dt.UTC)  # the simulated school's


def sh(text: str) -> str:
    return f"{text}+08:00"


def signup(who: str, referrer: str, day: int) -> dict[str, Any]:
    return {"type": "track", "event": "referral_signup", "distinct_id": who, "distinct_id_type": "login_id",
            "time": sh(f"2026-09-{day:02d}T10:00:00"), "properties": {"referrer_id": referrer}}


def order(who: str, amount: float, day: int) -> dict[str, Any]:
    return {"type": "track", "event": "order_paid", "distinct_id": who, "distinct_id_type": "login_id",
            "time": sh(f"2026-09-{day:02d}T12:00:00"), "properties": {"amount": amount, "order_type": "first"}}


# a brought b; b brought c and d; c "brought" a (a cycle); e names a referrer nobody is
HISTORY = [signup("a", "c", 1), signup("b", "a", 2), signup("c", "b", 3), signup("d", "b", 4),
           signup("e", "nobody", 5), order("b", 100, 6), order("d", 50, 7), order("a", 30, 8), order("a", 5, 9)]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    found = History(tmp_path_factory.mktemp("referral"), HISTORY, name="Referral School")
    yield found
    found.close()


def person(history: History, login: str) -> int:
    rows = history.platform.store.query("SELECT person_id FROM identities WHERE project_id = ? AND id_type = "
                                        "'login_id' AND id_value = ?", [history.project.id, login]).rows
    return int(rows[0][0])


def logins(node: ReferralNode) -> dict[str, list[str]]:
    out = {str(node.login_id): [str(c.login_id) for c in node.children]}
    for child in node.children:
        out.update(logins(child))
    return out


@pytest.mark.parametrize("engine", ["duckdb", "clickhouse"])
def test_the_tree_of_a_hand_built_history_with_a_cycle(history: History, engine: str) -> None:
    if engine == "clickhouse":
        require_chdb()
    service = history.service(engine)
    a = person(history, "a")
    tree = referral_tree(service, history.project, a, depth=3)
    assert logins(tree.root) == {"a": ["b"], "b": ["c", "d"], "c": [], "d": []}
    assert tree.persons == 4
    assert tree.tree_size == 3
    assert tree.cycles_cut == 1  # c -> a is cut, not followed
    assert tree.referred_by == [person(history, "c"), person(history, "b")]
    assert not tree.truncated
    assert (tree.root.revenue, tree.root.paid, tree.root.referees) == (35, True, 1)
    b = tree.root.children[0]
    assert (b.revenue, b.paid, b.referees, b.more) == (100, True, 2, False)
    c, d = b.children
    assert (c.paid, c.revenue, c.referees, c.children) == (False, 0, 1, [])  # c brought a, who is shown above
    assert (d.paid, d.revenue) == (True, 50)


def test_depth_limits_the_tree_and_says_there_is_more(history: History) -> None:
    tree = referral_tree(history.service(), history.project, person(history, "a"), depth=1)
    assert logins(tree.root) == {"a": ["b"], "b": []}
    assert tree.root.children[0].more
    assert tree.tree_size == 3  # at any depth
    assert tree.referred_by == [person(history, "c")]
    for depth in (0, 7):
        with pytest.raises(PackError, match="depth"):
            referral_tree(history.service(), history.project, person(history, "a"), depth=depth)


def test_a_person_who_brought_nobody_and_hidden_logins(history: History) -> None:
    e = person(history, "e")
    tree = referral_tree(history.service(), history.project, e, depth=2, show_logins=False)
    assert tree.root.children == []
    assert tree.root.login_id is None
    assert tree.referred_by == []  # "nobody" is no one's login id
    assert e not in referral_graph(history.service(), history.project).up


def test_a_long_chain_and_a_wide_tree_are_cut() -> None:
    chain = ReferralGraph.of([(i, i + 1) for i in range(20)] + [(20, 0)])
    tree = build(chain, 0, 6, {}, {})
    assert tree.persons == 7
    assert tree.tree_size == 20
    assert tree.referred_by == [20, 19, 18, 17, 16, 15]
    wide = ReferralGraph.of([(0, i) for i in range(1, 900)])
    cut = build(wide, 0, 2, {}, {}, max_nodes=500)
    assert cut.truncated
    assert cut.persons == 500
    assert cut.root.referees == 899


def test_revenue_share_equals_the_truth(school: Any) -> None:
    found = school.packs.headline(school.project, "referral", date_range="all", now=PACK_NOW)
    truth = school.truth
    referral = next(c for c in truth["channels"] if c["channel"] == "referral")
    # every referred learner came through the referral channel, so its revenue is what referred persons bring
    assert referral["leads"] == truth["referrals"]["referred_leads"]
    assert found.revenue == pytest.approx(truth["summary"]["revenue"], abs=0.05)
    assert found.referred_revenue == pytest.approx(referral["revenue"], abs=0.05)
    assert found.referred_revenue_share == pytest.approx(referral["revenue"] / truth["summary"]["revenue"], abs=1e-5)
    assert found.top_referrers[0].referrer_id == truth["referrals"]["top_referrers"][0]["login_id"]


def test_each_kols_revenue_against_the_store(school: Any) -> None:
    """Per KOL, an independent reading of the raw tables: the referees named by the truth's edges (by mobile),
    their persons through the identities table, their orders' amounts."""
    found = school.packs.headline(school.project, "referral", date_range="all", now=PACK_NOW)
    store, project = school.platform.store, school.project.id
    for kol in found.top_referrers:
        mobiles = [e["referee"]["mobile"] for e in school.truth["referrals"]["edges"]
                   if e["referrer"]["login_id"] == kol.referrer_id]
        assert len(mobiles) == kol.referees
        marks = ", ".join("?" for _ in mobiles)
        total = store.query(
            "SELECT coalesce(sum(e.prop_amount), 0) FROM events_resolved e "
            f"WHERE e.project_id = ? AND e.event = 'order_paid' AND e.resolved_person_id IN (SELECT person_id FROM "
            f"identities WHERE project_id = ? AND id_type = 'mobile' AND id_value IN ({marks}))",
            [project, project, *mobiles]).rows[0][0]
        assert kol.revenue == pytest.approx(total, abs=0.01), kol.referrer_id
        assert kol.revenue_share == pytest.approx(total / found.revenue, abs=1e-5)
        assert kol.person_id == person_of(school, kol.referrer_id)


def person_of(school: Any, login: str) -> int:
    return int(school.platform.store.query("SELECT person_id FROM identities WHERE project_id = ? AND id_type = "
                                           "'login_id' AND id_value = ?", [school.project.id, login]).rows[0][0])


def test_the_tree_of_the_top_kol_equals_the_truth(school: Any) -> None:
    found = school.packs.headline(school.project, "referral", date_range="all", now=PACK_NOW)
    top = school.truth["referrals"]["top_referrers"][0]
    kol = found.top_referrers[0]
    assert kol.person_id is not None
    tree = referral_tree(school.platform.query_service(), school.project, kol.person_id, depth=6)
    assert tree.root.login_id == top["login_id"]
    assert tree.root.referees == top["referees"]
    assert len(tree.root.children) == top["referees"]
    assert tree.tree_size == top["tree_size"]
    paid = sum(1 for c in tree.root.children if c.paid)
    assert paid == top["paying_referees"]


def test_the_revenue_report_lists_the_top_referrers_and_the_headline_only_those_it_shows(school: Any) -> None:
    """However many referrers a project has, the installed revenue report lists those who brought the most
    (at most TOP_REVENUE) and the headline asks the revenue of the referrers it shows only, so neither meets
    the row limit of a result; both agree on each referrer."""
    from edupulse.packs.referral import REVENUE, TOP_REVENUE

    rows = school.platform.query_service().run(school.project, REVENUE).result.rows
    per_referrer = {str(r[1]): round(float(r[2]), 2) for r in rows if r[0] == "referrer"}
    assert 0 < len(per_referrer) <= TOP_REVENUE
    amounts = [v for _, v in sorted(per_referrer.items(), key=lambda kv: (-kv[1], kv[0]))]
    assert amounts == sorted(amounts, reverse=True)
    found = school.packs.headline(school.project, "referral", date_range="all")
    for kol in found.top_referrers:
        if kol.referrer_id in per_referrer:
            assert kol.revenue == pytest.approx(per_referrer[kol.referrer_id])
    assert {("all",), ("referred",)} <= {(r[0],) for r in rows}
