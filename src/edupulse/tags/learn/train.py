"""Training, evaluating and scoring an education model on the rows of features.py.

The model is a logistic regression on standardized features (counts and durations on their logarithm): its
score explains itself, each feature contributing coefficient × (value − mean) / spread to the log-odds, and
the largest contributions of a unit are its reasons. Before a model is published it must pass a gate on
held-out data, as Moodle's "students at risk" model does: over 10 random splits (70 % learned, 30 % held
out), the mean AUC must be at least `GATE_MEAN` with a standard deviation at most `GATE_STD`. The evaluation
reported is on the later 30 % of units (the highest unit ids, which arrived last): AUC, precision and recall
at each tier's cut-off, calibration by tenths of the score, the ROC curve and each feature's weight.

scikit-learn is the `ml` extra, imported when a model is trained."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edupulse.tags.learn.features import Feature

# Units learned from at most: beyond this many with a known outcome, a random sample of them (stratified by
# outcome) is learned from and checked, which keeps training within seconds at 10 million events; the AUC of a
# 30 % hold-out of 50,000 units is known to about ±0.005, and every unit is still scored.
MAX_LEARN = 50_000
GATE_MEAN = 0.7
GATE_STD = 0.05
SPLITS = 10
MIN_ROWS = 40
REASONS = 3
TRAIN_STEPS = SPLITS + 3  # the gate's splits, the evaluation on later units, the final fit, scoring
# (stage, steps done of TRAIN_STEPS); stages: loading (scikit-learn), gate (one of its splits), evaluating (on the
# later units), fitting (on every unit), scoring
Step = Callable[[str, int], None]


def _quiet(stage: str, done: int) -> None:
    return None


class ModelRefused(Exception):
    """The model cannot be published: too little history, or it failed the gate (the reason says which)."""

    def __init__(self, reason: str, evaluation: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.evaluation = evaluation


def sklearn() -> Any:
    try:
        return importlib.import_module("sklearn")
    except ImportError as exc:
        raise ModelRefused("model tags need scikit-learn: pip install 'edupulse[ml]' (make install does)") from exc


@dataclass
class Trained:
    """A published model's evaluation and the scores and reasons of the units it scored."""

    evaluation: dict[str, Any]
    units: list[Any] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    reasons: list[list[tuple[str, float, float]]] = field(default_factory=list)


def _matrix(rows: list[tuple[Any, ...]], features: tuple[Feature, ...]) -> np.ndarray:
    x = np.array([[float(v) if v is not None else 0.0 for v in r[1:1 + len(features)]] for r in rows], dtype=float)
    if len(x) == 0:
        return x.reshape(0, len(features))
    for j, f in enumerate(features):
        if f.count:
            x[:, j] = np.log1p(np.clip(x[:, j], 0, None))
    return x


def _model() -> Any:
    sklearn()
    linear = importlib.import_module("sklearn.linear_model")
    pipeline = importlib.import_module("sklearn.pipeline")
    preprocessing = importlib.import_module("sklearn.preprocessing")
    return pipeline.make_pipeline(preprocessing.StandardScaler(), linear.LogisticRegression(max_iter=2000))


def _with_outcome(rows: list[tuple[Any, ...]], width: int) -> list[tuple[Any, ...]]:
    """The rows whose outcome is known, ordered by unit: the engine returns rows in no fixed order, and the same
    history must always give the same splits."""
    return sorted((r for r in rows if r[1 + width] is not None), key=lambda r: str(r[0]))


def train(rows: list[tuple[Any, ...]], features: tuple[Feature, ...], cutoffs: list[tuple[str, float]],
          seed: int = 7, observed: str | None = None, progress: Step = _quiet) -> Trained:
    """Rows are (unit, *features, outcome, scoring). A scored unit whose `observed` feature is set has met the
    outcome already: it scores 1, for that reason. Raises ModelRefused with the reason. `progress` is told each
    step (of TRAIN_STEPS) before it starts. The same rows in any order give the same model."""
    progress("loading", 0)
    sklearn()
    metrics = importlib.import_module("sklearn.metrics")
    selection = importlib.import_module("sklearn.model_selection")
    width = len(features)
    learn = _with_outcome(rows, width)
    y = np.array([int(r[1 + width]) for r in learn])
    positives = int(y.sum()) if len(y) else 0
    if len(learn) < MIN_ROWS or positives < 5 or len(learn) - positives < 5:
        raise ModelRefused(f"not enough history to learn from: {len(learn)} units with a known outcome, "
                           f"{positives} of them positive (at least {MIN_ROWS}, and 5 of each, are needed)")
    known = len(learn)
    if known > MAX_LEARN:
        chosen = _sample(y, MAX_LEARN, seed)
        learn, y = [learn[i] for i in chosen], y[chosen]
        positives = int(y.sum())
    x = _matrix(learn, features)
    splitter = selection.StratifiedShuffleSplit(n_splits=SPLITS, test_size=0.3, random_state=seed)
    aucs = []
    for i, (train_idx, test_idx) in enumerate(splitter.split(x, y)):
        progress("gate", i)
        fitted = _model().fit(x[train_idx], y[train_idx])
        aucs.append(float(metrics.roc_auc_score(y[test_idx], fitted.predict_proba(x[test_idx])[:, 1])))
    gate: dict[str, Any] = {"score": "AUC", "splits": SPLITS, "mean": round(float(np.mean(aucs)), 4),
            "std": round(float(np.std(aucs)), 4), "min_mean": GATE_MEAN, "max_std": GATE_STD}
    gate["passed"] = gate["mean"] >= GATE_MEAN and gate["std"] <= GATE_STD
    progress("evaluating", SPLITS)
    evaluation = {"gate": gate, "units_learned": len(learn), "units_with_outcome": known, "positives": positives,
                  **_held_out(learn, x, y, features, cutoffs, metrics)}
    if not gate["passed"]:
        raise ModelRefused(f"the model failed the gate: mean AUC {gate['mean']:.3f} over {SPLITS} held-out splits "
                           f"(at least {GATE_MEAN} needed), standard deviation {gate['std']:.3f} (at most "
                           f"{GATE_STD}); it is not published", evaluation)
    progress("fitting", SPLITS + 1)
    final = _model().fit(x, y)
    progress("scoring", SPLITS + 2)
    scoring = [r for r in rows if r[2 + width]]
    trained = Trained(evaluation=evaluation)
    if scoring:
        xs = _matrix(scoring, features)
        trained.units = [r[0] for r in scoring]
        trained.scores = [float(p) for p in final.predict_proba(xs)[:, 1]]
        trained.reasons = _reasons(final, xs, scoring, features)
        if observed is not None:
            j = [f.name for f in features].index(observed)
            for i, row in enumerate(scoring):
                if row[1 + j]:
                    trained.scores[i] = 1.0
                    trained.reasons[i] = [(observed, float(row[1 + j]), 9.99)]
    return trained


def _sample(y: np.ndarray, size: int, seed: int) -> np.ndarray:
    """`size` indices of `y` drawn at random, each outcome in its share (in the order of the rows)."""
    rng = np.random.default_rng(seed)
    chosen = []
    for value in (0, 1):
        where = np.flatnonzero(y == value)
        take = max(1, round(size * len(where) / len(y)))
        chosen.append(rng.choice(where, size=min(take, len(where)), replace=False))
    return np.sort(np.concatenate(chosen))


def cross_validated(rows: list[tuple[Any, ...]], features: tuple[Feature, ...], folds: int = 5,
                    seed: int = 7) -> list[tuple[tuple[Any, ...], float]]:
    """Every row with a known outcome and its score from a model that did not learn from it (k folds)."""
    sklearn()
    selection = importlib.import_module("sklearn.model_selection")
    width = len(features)
    learn = _with_outcome(rows, width)
    y = np.array([int(r[1 + width]) for r in learn])
    splitter = selection.StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = selection.cross_val_predict(_model(), _matrix(learn, features), y, cv=splitter, method="predict_proba")
    return [(r, float(p)) for r, p in zip(learn, scores[:, 1], strict=True)]


def _held_out(learn: list[tuple[Any, ...]], x: np.ndarray, y: np.ndarray, features: tuple[Feature, ...],
              cutoffs: list[tuple[str, float]], metrics: Any) -> dict[str, Any]:
    """Learned on the earlier 70 % of units (by id), evaluated on the later 30 %."""
    order = np.argsort(np.array([int(r[0]) if str(r[0]).lstrip("-").isdigit() else 0 for r in learn]), kind="stable")
    split = int(len(order) * 0.7)
    early, late = order[:split], order[split:]
    if len(set(y[late].tolist())) < 2 or len(set(y[early].tolist())) < 2:
        return {"held_out": None}
    fitted = _model().fit(x[early], y[early])
    p = fitted.predict_proba(x[late])[:, 1]
    truth = y[late]
    fpr, tpr, _ = metrics.roc_curve(truth, p)
    step = max(1, len(fpr) // 50)
    at_cutoffs = []
    for name, cut in cutoffs:
        chosen = p >= cut
        hits = int((chosen & (truth == 1)).sum())
        at_cutoffs.append({"tier": name, "min_score": cut, "units": int(chosen.sum()),
                           "precision": round(hits / int(chosen.sum()), 4) if chosen.any() else None,
                           "recall": round(hits / int(truth.sum()), 4) if truth.any() else None})
    calibration = []
    for low in np.arange(0, 1, 0.1):
        inside = (p >= low) & (p < low + 0.1 if low < 0.9 else p <= 1.0)
        if inside.any():
            calibration.append({"from": round(float(low), 1), "mean_score": round(float(p[inside].mean()), 4),
                                "rate": round(float(truth[inside].mean()), 4), "units": int(inside.sum())})
    scaler, linear = fitted[0], fitted[-1]
    del scaler
    weights: list[dict[str, Any]] = sorted(
        ({"feature": f.name, "en": f.en, "zh": f.zh, "weight": round(float(w), 4)}
         for f, w in zip(features, linear.coef_[0], strict=True)), key=lambda d: -abs(float(d["weight"])))
    return {"held_out": {"units": len(late), "positives": int(truth.sum()),
                         "auc": round(float(metrics.roc_auc_score(truth, p)), 4),
                         "brier": round(float(metrics.brier_score_loss(truth, p)), 4),
                         "at_cutoffs": at_cutoffs, "calibration": calibration,
                         "roc": [[round(float(a), 4), round(float(b), 4)]
                                 for a, b in zip(fpr[::step], tpr[::step], strict=True)] + [[1.0, 1.0]]},
            "importances": weights}


def _reasons(model: Any, x: np.ndarray, rows: list[tuple[Any, ...]],
             features: tuple[Feature, ...]) -> list[list[tuple[str, float, float]]]:
    """Per unit, the features that moved its score most: (feature, its value, contribution to the log-odds)."""
    scaler, linear = model[0], model[-1]
    contributions = (x - scaler.mean_) / np.where(scaler.scale_ == 0, 1, scaler.scale_) * linear.coef_[0]
    tops = np.argsort(-np.abs(contributions), axis=1, kind="stable")[:, :REASONS].tolist()
    exact, rounded = contributions.tolist(), np.round(contributions, 3).tolist()
    names = [f.name for f in features]
    out = []
    for row, top, moved, shown in zip(rows, tops, exact, rounded, strict=True):
        out.append([(names[j], float(row[1 + j]) if row[1 + j] is not None else 0.0, shown[j])
                    for j in top if abs(moved[j]) > 0.01])
    return out
