"""Match crops against enrolled examples, with a threshold calibrated on the examples themselves.

An enrolment is a set of example crops per class: positive classes (uniform types, extinguisher
types, role markers) and negative ones (enrolled "not uniform" crops). Each crop is one feature
vector: its EfficientNet-Lite0 embedding and its colour descriptor, both of length 1, weighted
``sqrt(1 - w)`` and ``sqrt(w)`` and concatenated, so a dot product is ``(1 - w) cos(embedding) +
w cos(colour)``.

Two matchers, both scored as a margin (how much closer the crop is to the positives than to the
negatives; without negatives, the similarity to the positives):

- ``centroid``: similarity to the nearest positive class's mean minus that to the nearest negative
  class's mean;
- ``knn``: mean similarity to the ``k`` nearest positive examples minus that to the ``k`` nearest
  negative examples.

``calibrate`` chooses the matcher, ``k`` and the colour weight by leave-one-out over the examples
(each example scored against all the others: the enrolment is measured on crops it was not given)
and the threshold on those scores that best separates positives from negatives (macro F1 of the two
sides). Without negatives, several positive classes are separated from each other (a crop unlike
every class is rejected as a crop of another class is); a single class without negatives is matched
by its mean with a threshold below 98 % of its leave-one-out scores by as much again as they spread
(nothing to choose by: enrol negatives).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

Method = Literal["centroid", "knn"]
METHODS: tuple[Method, ...] = ("centroid", "knn")
COLOUR_WEIGHTS = (0.0, 0.15, 0.3)
KS = (1, 3, 5)
POSITIVES_KEPT = 0.98  # without negatives: the share of positive leave-one-out scores accepted
ALONE: tuple[Method, int, float] = ("centroid", 1, 0.15)  # one class, no negatives (see calibrate)
MIN_EXAMPLES = 5  # per class: fewer and leave-one-out measures nothing (see the README's curve)


class EnrolmentError(ValueError):
    """The enrolment cannot be used as asked; the message says what to do. ``code`` and ``params``
    let the gateway word it in the user's language (gateway/i18n/enrolment.py: ``enrolment.<code>``)."""

    def __init__(self, message: str, code: str | None = None, **params: object) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


@dataclass(frozen=True)
class Examples:
    """Example features of an enrolment: one row per crop."""

    embeddings: np.ndarray  # [n, 1280], rows of length 1
    colours: np.ndarray  # [n, colour descriptor size], rows of length 1
    classes: tuple[str, ...]  # class name per row
    negative: np.ndarray  # [n] bool: the row is of a negative class

    def __post_init__(self) -> None:
        n = len(self.classes)
        if self.embeddings.shape[0] != n or self.colours.shape[0] != n or self.negative.shape[0] != n:
            raise EnrolmentError("enrolment examples disagree in length (damaged enrolment)")

    @staticmethod
    def join(parts: Sequence[Examples]) -> Examples:
        if not parts:
            return Examples(
                np.zeros((0, 1280), np.float32), np.zeros((0, 40), np.float32), (), np.zeros(0, bool)
            )
        return Examples(
            np.concatenate([p.embeddings for p in parts]).astype(np.float32),
            np.concatenate([p.colours for p in parts]).astype(np.float32),
            tuple(c for p in parts for c in p.classes),
            np.concatenate([p.negative for p in parts]).astype(bool),
        )

    def features(self, colour_weight: float) -> np.ndarray:
        return combine(self.embeddings, self.colours, colour_weight)

    @property
    def positive_classes(self) -> list[str]:
        return sorted({c for c, neg in zip(self.classes, self.negative, strict=True) if not neg})

    @property
    def negative_classes(self) -> list[str]:
        return sorted({c for c, neg in zip(self.classes, self.negative, strict=True) if neg})


def combine(embeddings: np.ndarray, colours: np.ndarray, colour_weight: float) -> np.ndarray:
    return np.concatenate(
        [np.sqrt(1.0 - colour_weight) * embeddings, np.sqrt(colour_weight) * colours], axis=1
    ).astype(np.float32)


@dataclass(frozen=True)
class Calibration:
    """How an enrolment decides, chosen by leave-one-out over its own examples."""

    method: Method
    k: int
    colour_weight: float
    threshold: float
    positives: int
    negatives: int
    loo_f1: (
        float | None
    )  # macro F1 of positive vs negative over the leave-one-out scores (None: no negatives)
    loo_positive_recall: float  # share of positive examples whose leave-one-out score passes
    loo_negative_rejected: float | None  # share of negatives whose score stays below
    against: str = "negatives"  # what the threshold separates the positives from (see _separated)
    tried: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Calibration:
        return Calibration(**{k: v for k, v in data.items() if k in Calibration.__dataclass_fields__})


def _topk_mean(sims: np.ndarray, k: int) -> np.ndarray:
    """Mean of the ``k`` largest values per row (-inf entries are left out); 0 for an empty row."""
    if sims.shape[1] == 0:
        return np.zeros(sims.shape[0], np.float32)
    k = min(k, sims.shape[1])
    top = -np.partition(-sims, k - 1, axis=1)[:, :k]
    finite = np.isfinite(top)
    total = np.where(finite, top, 0.0).sum(axis=1)
    count = finite.sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0).astype(np.float32)


def _centroids(x: np.ndarray, classes: Sequence[str], names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Summed features and counts per class name."""
    labels = np.asarray(classes)
    sums = np.stack([x[labels == n].sum(axis=0) for n in names]) if names else np.zeros((0, x.shape[1]))
    counts = np.asarray([(labels == n).sum() for n in names], np.float32)
    return sums.astype(np.float32), counts


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)


def class_scores(
    examples: Examples,
    queries: np.ndarray,
    method: Method,
    k: int,
    colour_weight: float,
    leave_out: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """([n, P] similarity of each query to each positive class, [n] to the negatives: 0 without).
    ``queries`` are combined features; ``leave_out``: the queries are the examples themselves, each
    scored without itself."""
    x = examples.features(colour_weight)
    pos_names, neg_names = examples.positive_classes, examples.negative_classes
    if not pos_names:
        raise EnrolmentError("nothing enrolled as a positive class")
    if method == "knn":
        sims = queries @ x.T
        if leave_out:
            np.fill_diagonal(sims, -np.inf)
        labels = np.asarray(examples.classes)
        per_class = np.stack([_topk_mean(sims[:, labels == n], k) for n in pos_names], axis=1)
        neg = _topk_mean(sims[:, examples.negative], k) if neg_names else np.zeros(len(queries), np.float32)
        return per_class, neg
    sums_p, counts_p = _centroids(x, examples.classes, pos_names)
    sums_n, counts_n = _centroids(x, examples.classes, neg_names)
    if not leave_out:
        sim_p = queries @ _unit(sums_p).T
        sim_n = queries @ _unit(sums_n).T if neg_names else np.zeros((len(queries), 1), np.float32)
    else:  # each example against its class's mean without itself
        sim_p = _loo_centroid_sims(queries, examples.classes, pos_names, sums_p, counts_p)
        sim_n = (
            _loo_centroid_sims(queries, examples.classes, neg_names, sums_n, counts_n)
            if neg_names
            else np.zeros((len(queries), 1), np.float32)
        )
    return sim_p, sim_n.max(axis=1)


def scores(
    examples: Examples,
    queries: np.ndarray,
    method: Method,
    k: int,
    colour_weight: float,
    leave_out: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """(margin per query, index of the best positive class per query into ``positive_classes``)."""
    per_class, neg = class_scores(examples, queries, method, k, colour_weight, leave_out)
    return per_class.max(axis=1) - neg, per_class.argmax(axis=1)


def _loo_centroid_sims(
    x: np.ndarray, classes: Sequence[str], names: Sequence[str], sums: np.ndarray, counts: np.ndarray
) -> np.ndarray:
    sims = x @ _unit(sums).T
    index = {n: i for i, n in enumerate(names)}
    for row, name in enumerate(classes):
        j = index.get(name)
        if j is None:
            continue
        if counts[j] <= 1:
            sims[row, j] = -1.0
            continue
        rest = sums[j] - x[row]
        sims[row, j] = float(x[row] @ rest / max(float(np.linalg.norm(rest)), 1e-9))
    return sims


def _best_threshold(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float]:
    """The threshold (a midpoint between neighbouring scores) with the best macro F1 of the two
    sides, scores at or above it being positive; (threshold, F1)."""
    values = np.concatenate([pos, neg])
    truth = np.concatenate([np.ones(len(pos), bool), np.zeros(len(neg), bool)])
    order = np.argsort(-values, kind="stable")
    v, t = values[order], truth[order]
    tp = np.cumsum(t)  # predicted positive: the first i+1 scores
    fp = np.cumsum(~t)
    fn = len(pos) - tp
    tn = len(neg) - fp
    f1_pos = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    f1_neg = 2 * tn / np.maximum(2 * tn + fn + fp, 1)
    macro = (f1_pos + f1_neg) / 2
    # only cut between different scores
    cut = np.append(v[1:] < v[:-1], True)
    macro = np.where(cut, macro, -1.0)
    i = int(np.argmax(macro))
    below = v[i + 1] if i + 1 < len(v) else v[i] - 0.05
    return float((v[i] + below) / 2), float(macro[i])


def calibrate(examples: Examples) -> Calibration:
    """Choose matcher, ``k``, colour weight and threshold by leave-one-out over the examples."""
    counts = {c: examples.classes.count(c) for c in set(examples.classes)}
    short = {c: n for c, n in counts.items() if n < MIN_EXAMPLES}
    if short:
        counts_text = ", ".join(f"{c} has {n}" for c, n in sorted(short.items()))
        raise EnrolmentError(
            f"too few examples: {counts_text}; enrol at least {MIN_EXAMPLES} per class, more for accuracy "
            "(the README's measured curve: examples per class against F1)",
            "too_few",
            counts=counts_text,
            needed=MIN_EXAMPLES,
        )
    pos_mask = ~examples.negative
    own = _own_class_index(examples)
    tried: list[dict[str, Any]] = []
    best: Calibration | None = None
    # One class and no negatives: nothing to measure a choice by, so the steadiest matcher for few
    # examples (the class mean) at a middle colour weight.
    alone = not examples.negative.any() and len(examples.positive_classes) == 1
    weights = (ALONE[2],) if alone else COLOUR_WEIGHTS
    for weight in weights:
        x = examples.features(weight)
        for method in (ALONE[0],) if alone else METHODS:
            for k in KS if method == "knn" else (1,):
                per_class, neg_sim = class_scores(examples, x, method, k, weight, leave_out=True)
                against, pos, neg = _separated(examples, per_class, neg_sim, own)
                if against == "none":
                    low, mid = float(np.quantile(pos, 1.0 - POSITIVES_KEPT)), float(np.median(pos))
                    threshold, f1 = low - (mid - low), None  # one class, nothing to separate from
                else:
                    threshold, f1 = _best_threshold(pos, neg)
                recall = float((pos >= threshold).mean())
                rejected = float((neg < threshold).mean()) if len(neg) else None
                candidate = Calibration(
                    method,
                    k,
                    weight,
                    threshold,
                    int(pos_mask.sum()),
                    int(examples.negative.sum()),
                    f1,
                    recall,
                    rejected,
                    against,
                )
                tried.append({k2: v for k2, v in candidate.as_dict().items() if k2 != "tried"})
                if best is None or _quality(candidate) > _quality(best) + 1e-9:
                    best = candidate
    assert best is not None
    return Calibration(**{**asdict(best), "tried": tried})


def _own_class_index(examples: Examples) -> np.ndarray:
    """Each example's column in the per-class scores (-1 for negatives)."""
    index = {n: i for i, n in enumerate(examples.positive_classes)}
    return np.asarray(
        [
            index.get(c, -1) if not neg else -1
            for c, neg in zip(examples.classes, examples.negative, strict=True)
        ]
    )


def _separated(
    examples: Examples, per_class: np.ndarray, neg_sim: np.ndarray, own: np.ndarray
) -> tuple[str, np.ndarray, np.ndarray]:
    """What the threshold separates, with the leave-one-out scores of both sides:

    - "negatives": each example's margin; positives against the enrolled negatives;
    - "other classes" (no negatives, several positive classes): an example's similarity to its own
      class against its similarity to each other class (a crop unlike every enrolled class is
      rejected like a crop of another class would be by this one);
    - "none" (one positive class only): the positives' scores, no other side."""
    pos_mask = ~examples.negative
    if examples.negative.any():
        margin = per_class.max(axis=1) - neg_sim
        return "negatives", margin[pos_mask], margin[examples.negative]
    if per_class.shape[1] >= 2:
        rows = np.arange(len(own))
        pos = per_class[rows, own]
        others = np.ones_like(per_class, bool)
        others[rows, own] = False
        return "other classes", pos, per_class[others]
    return "none", per_class[:, 0], np.zeros(0, np.float32)


def _quality(c: Calibration) -> float:
    """Higher is better: the leave-one-out F1 (one class alone is calibrated one way only)."""
    return c.loo_f1 if c.loo_f1 is not None else 0.0


@dataclass(frozen=True)
class Match:
    """One crop against an enrolment."""

    matched: bool  # of a positive class (a uniform, an extinguisher, a marker)
    label: str  # the best positive class
    margin: float  # the matcher's score (see the module docstring)
    confidence: float  # 0..1: how far the margin is past the threshold, 0.5 at the threshold

    @property
    def known(self) -> bool:
        """False for a crop with nothing in it: no call either way (never an alarm on guesswork)."""
        return self.margin == self.margin  # not NaN


class Enrolled:
    """An enrolment ready to match: its examples and its calibration."""

    def __init__(
        self,
        examples: Examples,
        calibration: Calibration,
        key: str = "",
        shapes: Sequence[tuple[float, float]] = (),
    ) -> None:
        self.examples = examples
        self.calibration = calibration
        self.key = key  # what it was built from (the versions), to notice a change
        # (height as a fraction of its picture's, width / height) of the positive examples where known:
        # where a scene that scans the frame looks, and with which window shapes
        self.shapes = list(shapes)
        self._positive = examples.positive_classes

    def match_features(self, embeddings: np.ndarray, colours: np.ndarray) -> list[Match]:
        cal = self.calibration
        if len(embeddings) == 0:
            return []
        if len(self._positive) == 0:
            raise EnrolmentError("nothing enrolled as a positive class")
        q = combine(embeddings, colours, cal.colour_weight)
        margin, best = scores(self.examples, q, cal.method, cal.k, cal.colour_weight)
        spread = 0.1  # a margin this far past the threshold is a sure call
        out = []
        for m, b, e in zip(margin, best, embeddings, strict=True):
            if not e.any():  # an empty crop: no call either way
                out.append(Match(False, "", float("nan"), 0.0))
                continue
            conf = float(np.clip(0.5 + (m - cal.threshold) / (2 * spread), 0.0, 1.0))
            out.append(Match(bool(m >= cal.threshold), self._positive[int(b)], float(m), conf))
        return out
