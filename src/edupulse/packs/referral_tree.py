"""The referral tree of a person (转介绍关系树): whom they brought (the persons whose `referral_signup` carries
their login id as `referrer_id`), whom those brought, and so on down to a depth; and who brought them.

The edges are read once from the store (the `sql` analysis over the documented `events` and `identities`
views, so after One-ID merges) and the tree is walked here: breadth first, each person at most once, so a
cycle in the data (A brought B, B "brought" A) ends the branch instead of looping; a person met again is
counted in `cycles_cut`. A tree holds at most MAX_NODES persons (the rest is cut and said so)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from edupulse.packs.headline import PackError
from edupulse.queries.metadata import ProjectRef
from edupulse.queries.service import PersonScope, QueryService

MAX_DEPTH = 6
MAX_NODES = 500
MAX_EDGES = 100_000  # referral sign-ups read at most (the sql analysis's row limit)
EDGES_SQL = (
    "SELECT e.person_id AS referee, i.person_id AS referrer, e.prop_referrer_id AS referrer_id\n"
    "FROM events AS e LEFT JOIN identities AS i ON i.id_type = 'login_id' AND i.id_value = e.prop_referrer_id\n"
    "WHERE e.event = 'referral_signup' AND e.prop_referrer_id IS NOT NULL AND e.prop_referrer_id <> ''\n"
    "GROUP BY e.person_id, i.person_id, e.prop_referrer_id")


def facts_sql(persons: list[int]) -> str:
    """Each person's login id and the revenue of their orders (all time)."""
    ids = ", ".join(str(int(p)) for p in persons) or "0"
    return (f"SELECT person_id, 'login' AS fact, min(id_value) AS value, 0 AS revenue FROM identities\n"
            f"WHERE id_type = 'login_id' AND person_id IN ({ids}) GROUP BY person_id\n"
            "UNION ALL\n"
            f"SELECT person_id, 'orders' AS fact, '' AS value, sum(prop_amount) AS revenue FROM events\n"
            f"WHERE event = 'order_paid' AND person_id IN ({ids}) GROUP BY person_id")


class ReferralNode(BaseModel):
    model_config = ConfigDict(extra="forbid")
    person_id: int
    login_id: str | None = Field(description="null for those who may not see personal data")
    paid: bool
    revenue: float
    referees: int = Field(description="persons this person brought directly (all of them, shown or not)")
    more: bool = Field(description="this person brought someone below the depth asked (not shown)")
    children: list[ReferralNode]


class ReferralTree(BaseModel):
    model_config = ConfigDict(extra="forbid")
    root: ReferralNode
    depth: int
    persons: int = Field(description="persons in the tree shown, the root included")
    tree_size: int = Field(description="persons brought directly or indirectly, at any depth")
    referred_by: list[int] = Field(description="who brought the root, then who brought them... (nearest first)")
    cycles_cut: int
    truncated: bool = Field(description="more than MAX_NODES persons, or more than MAX_EDGES referrals in the "
                                        "project: the tree was cut")


@dataclass
class ReferralGraph:
    """Referrer person -> the persons they brought, and the reverse."""

    down: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    up: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    partial: bool = False  # the project has more referral edges than were read

    @classmethod
    def of(cls, edges: list[tuple[int, int]]) -> ReferralGraph:
        graph = cls()
        for referrer, referee in sorted(set(edges)):
            if referrer != referee:
                graph.down[referrer].append(referee)
                graph.up[referee].append(referrer)
        return graph

    def reach(self, root: int) -> int:
        """Persons brought by the root directly or indirectly (each once, cycles safe)."""
        seen, todo = {root}, [root]
        while todo:
            for child in self.down.get(todo.pop(), []):
                if child not in seen:
                    seen.add(child)
                    todo.append(child)
        return len(seen) - 1

    def chain_up(self, root: int, depth: int) -> list[int]:
        """Who brought the root (the first referrer when several), then who brought them, up to `depth`."""
        chain: list[int] = []
        seen = {root}
        current = root
        while len(chain) < depth and self.up.get(current):
            parent = self.up[current][0]
            if parent in seen:
                break
            chain.append(parent)
            seen.add(parent)
            current = parent
        return chain


@dataclass
class _Walk:
    """The persons kept in a breadth-first walk, with their depth and parent."""

    order: list[tuple[int, int, int | None]] = field(default_factory=list)  # person, depth, parent
    cycles_cut: int = 0
    truncated: bool = False


def walk(graph: ReferralGraph, root: int, depth: int, max_nodes: int = MAX_NODES) -> _Walk:
    """Breadth first from the root to `depth` levels: each person once (a person met again is a cut cycle)."""
    out = _Walk(order=[(root, 0, None)])
    seen = {root}
    level = [root]
    for d in range(1, depth + 1):
        nxt = []
        for parent in level:
            for child in graph.down.get(parent, []):
                if child in seen:
                    out.cycles_cut += 1
                    continue
                if len(out.order) >= max_nodes:
                    out.truncated = True
                    continue
                seen.add(child)
                out.order.append((child, d, parent))
                nxt.append(child)
        level = nxt
    return out


def build(graph: ReferralGraph, root: int, depth: int, logins: Mapping[int, str],
          revenue: Mapping[int, float], max_nodes: int = MAX_NODES) -> ReferralTree:
    """The tree of `root` as nested nodes (pure: the graph and the facts are given)."""
    done = walk(graph, root, depth, max_nodes)
    kids: dict[int, list[int]] = defaultdict(list)
    level = {}
    for person, d, parent in done.order:
        level[person] = d
        if parent is not None:
            kids[parent].append(person)

    def node(person: int) -> ReferralNode:
        brought = graph.down.get(person, [])
        return ReferralNode(person_id=person, login_id=logins.get(person), paid=person in revenue,
                            revenue=round(revenue.get(person, 0.0), 2), referees=len(brought),
                            more=bool(brought) and level[person] == depth,
                            children=[node(c) for c in kids.get(person, [])])

    return ReferralTree(root=node(root), depth=depth, persons=len(done.order), tree_size=graph.reach(root),
                        referred_by=graph.chain_up(root, depth), cycles_cut=done.cycles_cut,
                        truncated=done.truncated or graph.partial)


def referral_graph(service: QueryService, project: ProjectRef, scope: PersonScope | None = None) -> ReferralGraph:
    """The project's referral edges (referrer person, referee person), all time; a `referrer_id` that is no
    person's login id is left out."""
    found = service.run(project, {"kind": "sql", "sql": EDGES_SQL, "limit": MAX_EDGES}, scope=scope).result
    graph = ReferralGraph.of([(int(r[1]), int(r[0])) for r in found.rows if r[1] not in (None, 0)])
    graph.partial = bool(found.truncated)
    return graph


def referral_tree(service: QueryService, project: ProjectRef, person_id: int, depth: int = 3, *,
                  show_logins: bool = True, scope: PersonScope | None = None) -> ReferralTree:
    """The referral tree of one person, `depth` levels down (1 to MAX_DEPTH)."""
    if not 1 <= depth <= MAX_DEPTH:
        raise PackError(f"depth {depth}: give 1 to {MAX_DEPTH} levels")
    graph = referral_graph(service, project, scope)
    shown = [p for p, _, _ in walk(graph, person_id, depth).order] + graph.chain_up(person_id, depth)
    rows = service.run(project, {"kind": "sql", "sql": facts_sql(shown), "limit": 100_000}, scope=scope).result.rows
    logins = {int(r[0]): str(r[2]) for r in rows if r[1] == "login"} if show_logins else {}
    revenue = {int(r[0]): float(r[3] or 0) for r in rows if r[1] == "orders"}
    return build(graph, person_id, depth, logins, revenue)
