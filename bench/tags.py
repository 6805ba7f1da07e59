"""Tags on simulated data: every built-in tag and model computed on a simulation and checked against the
ground truth it planted, with the time of each tag as a ratio to one scan of the events in the same run.

    python bench/tags.py --learners 33000 --days 180           # simulate into a temporary directory
    python bench/tags.py --learners 360000 --keep              # about 10 M events, kept in bench/out/tags-N
    python bench/tags.py --data-dir D --metadata-url U --project P --truth T.json   # an existing simulation
    python bench/tags.py --data-dir D/data --metadata-url sqlite:///D/meta.sqlite --no-truth   # any store,
        # e.g. 100 M events made by bench/replicate_store.py from a kept 10 M simulation (timings only)

With --keep the simulation is made once under bench/out/tags-LEARNERS (about 28 events per learner over 180
days: 360,000 learners give 10 M events) and reused by later runs. The machine's load average is printed
before and after (the machine may be shared: the ratios to one scan are the figures to compare).

Prints one JSON object: per tag the seconds, the scans it is worth, and the figure against the truth
(lead AUC against planted high intent, missed_3 equal to the truth's at_risk, dropout recall and precision
on students who stopped, renewal AUC against planted renewals and its ceiling, health warning recall on
declining institutions, top-10 KOLs equal to the planted top referrers)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from edupulse.conf import Settings
from edupulse.runtime import Platform
from edupulse.tags.run import TagService


def simulate(root: Path, learners: int, days: int, end: str) -> tuple[Settings, str, Path]:
    settings = Settings(data_dir=root / "data", metadata_url=f"sqlite:///{root / 'meta.sqlite'}")
    truth = root / "truth.json"
    env = {"EDUPULSE_DATA_DIR": str(settings.data_dir), "EDUPULSE_METADATA_URL": settings.resolved_metadata_url}
    subprocess.run([sys.executable, "-m", "edupulse", "simulate", "--project", "Sim", "--seed", "1", "--learners",
                    str(learners), "--days", str(days), "--end", end, "--truth", str(truth)], check=True,
                   env={**os.environ, **env}, capture_output=True)
    return settings, "Sim", truth


def persons_by_identity(svc: TagService, project: Any) -> dict[tuple[str, str], int]:
    ctx = svc.queries.context(project)
    sql = (f"SELECT i.id_type, i.id_value, coalesce(o.person_id, i.person_id) FROM identities i LEFT JOIN "
           f"person_overrides o ON o.project_id = {project.id} AND o.old_person_id = i.person_id "
           f"WHERE i.project_id = {project.id}")
    del ctx
    return {(t, v): int(p) for t, v, p in svc.store.query(sql).rows}


def person_of(ids: dict[tuple[str, str], int], who: dict[str, str]) -> int | None:
    for kind in ("login_id", "crm_lead_id", "mobile"):
        if kind in who and (kind, who[kind]) in ids:
            return ids[(kind, who[kind])]
    return None


def all_values(svc: TagService, project: Any, name: str) -> dict[Any, Any]:
    total, _ = svc.values(project, name, limit=1)
    out: dict[Any, Any] = {}
    for offset in range(0, total, 1000):
        _, page = svc.values(project, name, limit=1000, offset=offset)
        for v in page:
            out[v.unit] = v
    return out


def auc(scores: list[float], labels: list[int]) -> float | None:
    from sklearn.metrics import roc_auc_score

    return round(float(roc_auc_score(labels, scores)), 4) if len(set(labels)) == 2 else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--learners", type=int, default=5000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--end", default="2026-12-01")
    parser.add_argument("--data-dir")
    parser.add_argument("--metadata-url")
    parser.add_argument("--project", default="Sim")
    parser.add_argument("--truth")
    parser.add_argument("--keep", action="store_true", help="simulate once into bench/out/tags-LEARNERS and reuse it")
    parser.add_argument("--no-truth", action="store_true", help="time the tags only (no figures against the truth)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.data_dir:
            settings = Settings(data_dir=Path(args.data_dir), metadata_url=args.metadata_url)
            name, truth_path = args.project, Path(args.truth) if args.truth else None
            if truth_path is None and not args.no_truth:
                parser.error("--data-dir needs --truth (or --no-truth to time the tags only)")
        elif args.keep:
            root = Path(__file__).resolve().parent / "out" / f"tags-{args.learners}"
            if (root / "truth.json").exists():
                settings = Settings(data_dir=root / "data", metadata_url=f"sqlite:///{root / 'meta.sqlite'}")
                name, truth_path = "Sim", root / "truth.json"
            else:
                root.mkdir(parents=True, exist_ok=True)
                settings, name, truth_path = simulate(root, args.learners, args.days, args.end)
        else:
            settings, name, truth_path = simulate(Path(tmp), args.learners, args.days, args.end)
        truth = json.loads(truth_path.read_text(encoding="utf-8")) if truth_path else {}
        now = dt.datetime.fromisoformat(args.end + "T00:00:00+08:00").astimezone(dt.UTC)
        load_before = os.getloadavg()
        out = run(settings, name, truth, now, with_truth=not args.no_truth)
        out["load_average_before"], out["load_average_after"] = load_before, os.getloadavg()
        out["cpus"] = os.cpu_count()
        # the process's peak memory (the platform's identity map, the models' features), in MB
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        print(json.dumps(out, indent=1, ensure_ascii=False))


def run(settings: Settings, name: str, truth: dict[str, Any], now: dt.datetime, with_truth: bool = True,
        ) -> dict[str, Any]:
    opening = time.perf_counter()
    with Platform(settings).open(background_loader=False) as platform:
        opened = round(time.perf_counter() - opening, 1)  # loads the identity map: not part of any tag's time
        project = platform.meta.project_by_name(name)
        if project is None:
            raise SystemExit(f"no project {name!r} in {settings.resolved_metadata_url}")
        svc = TagService(platform.meta, platform.store, platform.query_service())
        # one scan: every event of the project read once and grouped by its person after merges; the fastest of
        # three (the first also reads the file from disk)
        scans = []
        for _ in range(3):
            started = time.perf_counter()
            events = platform.store.query(
                f"SELECT sum(n) FROM (SELECT coalesce(o.person_id, e.person_id) AS pid, count(*) AS n, "
                f"count(DISTINCT e.event) AS k FROM events e LEFT JOIN person_overrides o ON o.project_id = "
                f"{project.id} AND o.old_person_id = e.person_id WHERE e.project_id = {project.id} GROUP BY 1)"
            ).rows[0]
            scans.append(time.perf_counter() - started)
        scan = min(scans)
        out: dict[str, Any] = {"events": int(events[0]), "platform_open_seconds": opened,
                               "one_scan_seconds": round(scan, 3),
                               "scan_seconds_each": [round(x, 3) for x in scans], "tags": {}}
        stages: list[tuple[str, float]] = []
        svc.listener = lambda stage, done, total: stages.append((stage, time.perf_counter()))
        started = time.perf_counter()
        import sklearn  # noqa: F401  (imported once per process; not a cost of any one model)

        out["sklearn_import_seconds"] = round(time.perf_counter() - started, 2)
        for tag in svc.tags(project):
            stages.clear()
            started = time.perf_counter()
            done = svc.run(project, tag.name, now)
            ended = time.perf_counter()
            seconds = ended - started
            out["tags"][tag.name] = {"status": done.status, "seconds": round(seconds, 3),
                                     "scans": round(seconds / scan, 1) if scan else None, "units": done.units,
                                     "error": done.error or None, "gate": (done.evaluation or {}).get("gate"),
                                     "held_out_auc": ((done.evaluation or {}).get("held_out") or {}).get("auc")}
            if done.evaluation is not None:
                out["tags"][tag.name]["parts"] = model_parts(stages, started, ended)
                out["tags"][tag.name]["units_learned"] = done.evaluation.get("units_learned")
        rules = [t for t, v in out["tags"].items() if v["gate"] is None and v["status"] == "finished"]
        out["rule_tags_scans"] = round(sum(out["tags"][t]["scans"] for t in rules), 1)
        out["rule_tags_seconds"] = round(sum(out["tags"][t]["seconds"] for t in rules), 2)
        out["model_seconds"] = round(sum(v["seconds"] for v in out["tags"].values() if v["gate"] is not None), 2)
        models = [v["parts"] for v in out["tags"].values() if "parts" in v]
        out["model_seconds_by_part"] = {part: round(sum(m[part] for m in models), 2)
                                        for part in ("reading", "training", "storing")}
        if with_truth:
            out["truth"] = against_truth(svc, project, truth)
            out["truth"]["cross_validated"] = predictive(svc, project, truth, now)
    return out


def model_parts(stages: list[tuple[str, float]], started: float, ended: float) -> dict[str, float]:
    """A model run's seconds: reading its features (SQL over the events), training (the gate's splits, the
    evaluation, the final fit and scoring every unit, scikit-learn's import excluded: it is imported before) and
    storing the scores."""
    at = dict(reversed(stages))  # the first time each stage began
    read_end = at.get("loading", ended)
    store_start = at.get("storing", ended)
    return {"reading": round(read_end - started, 2), "training": round(store_start - read_end, 2),
            "storing": round(ended - store_start, 2)}


def predictive(svc: TagService, project: Any, truth: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """The models' scores for units they did not learn from (5 folds), against the planted truth: lead AUC
    on matured leads; dropout from behaviour up to 14 days before the end, on who stopped in those 14 days;
    renewal per ended course (the score of that course, not of the course a renewal bought)."""
    from dataclasses import replace

    from edupulse.queries.base import render
    from edupulse.tags.learn.features import PLANS
    from edupulse.tags.learn.train import cross_validated

    ids = persons_by_identity(svc, project)
    ctx = replace(svc.queries.context(project, now=now), until=now)
    out: dict[str, Any] = {}
    for name, plan_of in PLANS.items():
        started = time.perf_counter()
        plan = plan_of(ctx)
        rows = svc.store.query(render(plan.statement, ctx.dialect)).rows
        scored = cross_validated(rows, plan.features)
        out[f"{name}_seconds"] = round(time.perf_counter() - started, 2)
        width = len(plan.features)
        if name == "lead_propensity":
            intent = {person_of(ids, r) for r in truth["lead_intent"]["high_intent"]}
            out["lead_auc_vs_high_intent"] = auc([p for _, p in scored], [int(r[0] in intent) for r, _ in scored])
        elif name == "dropout_risk":
            churned = {person_of(ids, r) for r in truth["learning"]["churned"]}
            out["dropout"] = pr_at_best_pairs([(p, r[0] in churned) for r, p in scored])
        else:
            by_course = {(r[0], r[3 + width]): p for r, p in scored}
            pairs = []
            for c in truth["renewal"]["candidates"]:
                key = (person_of(ids, c), c["course_id"])
                if key in by_course and c.get("propensity") is not None:
                    pairs.append((by_course[key], int(c["renewed"]), c["propensity"]))
            out["renewal_units"] = len(pairs)
            out["renewal_auc_vs_planted"] = auc([a for a, _, _ in pairs], [b for _, b, _ in pairs])
            out["renewal_ceiling_auc_truth_propensity"] = auc([c for _, _, c in pairs], [b for _, b, _ in pairs])
    return out


def against_truth(svc: TagService, project: Any, truth: dict[str, Any]) -> dict[str, Any]:
    ids = persons_by_identity(svc, project)
    figures: dict[str, Any] = {}
    missed = all_values(svc, project, "missed_3_in_a_row")
    planted = {person_of(ids, r) for r in truth["learning"]["at_risk"]}
    figures["missed_3_equal_at_risk"] = set(missed) == planted
    figures["missed_3"] = {"tagged": len(missed), "planted": len(planted), "missing": len(planted - set(missed)),
                           "extra": len(set(missed) - planted)}
    kol = all_values(svc, project, "referral_kol")
    top = sorted((p for p, v in kol.items() if v.value == "kol"),
                 key=lambda p: json.loads(kol[p].detail)["rank"])
    planted_top = [person_of(ids, r) for r in truth["referrals"]["top_referrers"]]
    figures["top_10_kols_equal"] = set(top) == set(planted_top)
    leads = all_values(svc, project, "lead_propensity")
    intent = {person_of(ids, r) for r in truth["lead_intent"]["high_intent"]}
    scored = [(v.number, int(p in intent)) for p, v in leads.items() if v.number is not None]
    figures["lead_auc_vs_high_intent"] = auc([s for s, _ in scored], [y for _, y in scored]) if scored else None
    figures["lead_units"] = len(scored)
    dropout = all_values(svc, project, "dropout_risk")
    churned = {person_of(ids, r) for r in truth["learning"]["churned"]}
    if dropout:
        figures["dropout"] = pr_at_best(dropout, churned)
    # renewal: each person's tag scores their latest course (for a renewer, the course the renewal bought), so
    # the figure against planted renewals is per ended course, in `cross_validated`
    health = all_values(svc, project, "institution_health")
    declining = {i["institution_id"] for i in truth["institutions"] if i["health"] == "declining"}
    warned = {k for k, v in health.items() if v.value == "warning"}
    figures["health_warning_recall"] = round(len(warned & declining) / len(declining), 3) if declining else None
    figures["health_warning_precision"] = round(len(warned & declining) / len(warned), 3) if warned else None
    return figures


def pr_at_best(values: dict[Any, Any], positives: set[Any]) -> dict[str, Any]:
    return pr_at_best_pairs([(v.number or 0.0, p in positives) for p, v in values.items()])


def pr_at_best_pairs(pairs: list[tuple[float, bool]]) -> dict[str, Any]:
    """Recall and precision at the score cut-off with the best recall among those with precision >= 0.8 (the
    most precise of those)."""
    ranked = sorted(pairs, reverse=True)
    total = sum(1 for _, y in ranked if y)
    best: dict[str, Any] = {"positives": total, "scored": len(ranked)}
    hits = 0
    for i, (score, y) in enumerate(ranked, start=1):
        hits += y
        precision, recall = hits / i, hits / total if total else 0.0
        better = recall > best.get("recall", -1) or (recall == best.get("recall") and precision > best["precision"])
        if precision >= 0.8 and better:
            best.update(recall=round(recall, 3), precision=round(precision, 3), cutoff=round(score, 4))
    return best


if __name__ == "__main__":
    main()
