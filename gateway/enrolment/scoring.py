"""An enrolled scene scored end to end on a labelled YOLO split, as production runs it.

Per image: the scene's person detector at the scene's input size (every detection above the
runtime's floor), the scene's own filter (``Scene.relevant``: its labels, thresholds, exclusions),
then the scene's per-frame call (``classify``: the torso of each person matched against the enrolment
in the database, or the extinguisher candidates matched), exactly the function its ``observe`` uses.
Object level: each call (a person's box, for the work clothes) matched one-to-one to a labelled box
of a reported class (IoU >= ``min_iou`` or the call's box holding the label: the person wearing the
labelled vest); a
matched call of the same class is a TP, any other call an FP of its class, a labelled box not called
as its class an FN. Image level: whether a frame shows the class at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from analyzers.evaluation import YoloDataset, iter_images
from analyzers.records import Detection
from analyzers.scenes.base import Scene
from analyzers.training.evaluate import per_class, prf
from analyzers.training.people import match

Detect = Callable[[np.ndarray], list[Detection]]


def score_scene(
    scene: Scene,
    detect: Detect | None,
    dataset: YoloDataset,
    report: Mapping[str, str],
    min_iou: float = 0.3,
    progress: Callable[[int], None] | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """``report``: dataset class -> reported class (the scene's classify labels). Returns
    {"object": {class: prf}, "image": {class: prf}} (analyzers.training.evaluate shapes)."""
    classify = getattr(scene, "classify", None)
    if classify is None:
        raise ValueError(f"scene {scene.key} has no per-frame call to score")
    classes = sorted(set(report.values()))
    counts = {c: [0, 0, 0] for c in classes}
    t_img: list[np.ndarray] = []
    p_img: list[np.ndarray] = []
    for item, image in iter_images(dataset):
        height, width = image.shape[:2]
        found = detect(image) if detect is not None else []
        kept = scene.relevant(found, width, height)
        calls = [d for d in classify(image, kept) if d.label in counts]
        truths = [
            (t.box, report[t.label]) for t in item.truths(dataset.names, width, height) if t.label in report
        ]
        pairs = match([d.box for d in calls], [b for b, _ in truths], min_iou)
        by_call = dict(pairs)
        by_truth = {j: i for i, j in pairs}
        for k, d in enumerate(calls):
            hit = by_call.get(k)
            counts[d.label][0 if hit is not None and truths[hit][1] == d.label else 1] += 1
        for k, (_, label) in enumerate(truths):
            seen = by_truth.get(k)
            if seen is None or calls[seen].label != label:
                counts[label][2] += 1
        t_img.append(np.asarray([any(c == label for _, label in truths) for c in classes]))
        p_img.append(np.asarray([any(d.label == c for d in calls) for c in classes]))
        if progress is not None:
            progress(1)
    if not t_img:
        raise ValueError(f"{dataset.root}: no image to evaluate")
    return {
        "object": {c: prf(*counts[c]) for c in classes},
        "image": per_class(np.stack(t_img), np.stack(p_img), classes),
    }
