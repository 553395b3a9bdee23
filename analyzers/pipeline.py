"""Per-frame analysis of one camera: detector -> crops -> cards -> tracks -> scenes.

The gateway's camera runner owns threads, sources and the alarm recorder; what happens to a frame
lives here. Stage 1 (``submit``) hands the frame to the first model each due scene reads (a detector,
or a classifier card over regions of the frame) and to the detectors merged with it, one inference
per model per frame however many scenes read it. Stage 2 (``judge``) takes the answers, runs the pose
model on the people found, cuts each scene's part of every person for its classifier card (analyzers
.crops) and classifies them in one batch per card, and updates the scenes (which track their
targets); it returns each scene's alarm events for the caller to record.

Models are reached through their inference workers (``submit(item) -> Future``): ``classifier_batch``
and ``pose_batch`` are what those workers run for classifier cards and pose models.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar

import numpy as np

from analyzers import crops
from analyzers.detectors import ImageClassifier
from analyzers.pose import BlazePoseLandmarks
from analyzers.records import AlarmEvent, Detection
from analyzers.scenes.base import Scene

RESULT_TIMEOUT_S = 60.0


class Worker(Protocol):
    def submit(self, item: Any) -> Future[Any]: ...


class Stage(Protocol):
    """A loaded model as the pipeline uses it."""

    @property
    def name(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def kind(self) -> str: ...  # detector | pose | classifier
    @property
    def worker(self) -> Worker: ...


class Run(Protocol):
    """One scene on one camera with the models it reads."""

    @property
    def scene(self) -> Scene: ...
    @property
    def model(self) -> Stage | None: ...  # the first stage: a detector, or a classifier of the frame
    @property
    def pose(self) -> Stage | None: ...
    @property
    def classifier(self) -> Stage | None: ...  # a classifier card run on the people ``model`` finds
    @property
    def extras(self) -> Sequence[Stage]: ...  # detectors merged with ``model``'s answer
    @property
    def crop(self) -> str | None: ...  # the part a classifier card looks at (analyzers.crops)


R = TypeVar("R", bound=Run)


def first_key(run: Run) -> str:
    """The key of the first-stage answer a scene reads (shared by the scenes that ask alike)."""
    assert run.model is not None
    return run.model.key if run.model.kind != "classifier" else f"{run.model.name}/{run.crop}"


def first_input(run: Run, image: np.ndarray) -> Any:
    """What the first-stage model is given: the frame, or a classifier's regions of the frame."""
    assert run.model is not None
    if run.model.kind != "classifier":
        return image
    height, width = image.shape[:2]
    crop = run.crop or "frame"
    return (image, crops.region_boxes(crop, width, height), crops.crop_expand(crop), crop == "scan")


def submit(due: Sequence[Run], image: np.ndarray) -> dict[str, Future[Any]]:
    """Stage 1: one inference per model per frame, shared by every due scene that reads it."""
    futures: dict[str, Future[Any]] = {}
    for run in due:
        key = first_key(run)
        if key not in futures:
            assert run.model is not None
            futures[key] = run.model.worker.submit(first_input(run, image))
        for extra in run.extras:
            if extra.key not in futures:
                futures[extra.key] = extra.worker.submit(image)
    return futures


def judge(
    ts: float, image: np.ndarray, due: Sequence[R], futures: Mapping[str, Future[Any]]
) -> list[tuple[R, list[AlarmEvent]]]:
    """Stage 2: answers -> pose -> classifier cards on people's parts -> scenes; each due scene with
    the alarm events it raised on this frame."""
    height, width = image.shape[:2]
    detections = {name: fut.result(timeout=RESULT_TIMEOUT_S) for name, fut in futures.items()}
    people = [d for dets in detections.values() for d in dets if d.label == "person"]
    pose_models = {r.pose.name: r.pose for r in due if r.pose is not None}
    pose_futures = {name: h.worker.submit((image, people)) for name, h in pose_models.items()}
    poses = {name: fut.result(timeout=RESULT_TIMEOUT_S) for name, fut in pose_futures.items()}
    answers = classify_parts(image, due, detections, poses)
    out: list[tuple[R, list[AlarmEvent]]] = []
    for run in due:
        found: list[Detection] = answers.get(id(run), detections[first_key(run)])
        for extra in run.extras:
            taken = run.scene.extra_models.get(extra.name, ())
            found = [*found, *(d for d in detections[extra.key] if d.label in taken)]
        events = run.scene.update(
            ts,
            found,
            width,
            height,
            image=image,
            poses=poses[run.pose.name] if run.pose is not None else (),
        )
        out.append((run, events))
    return out


def classify_parts(
    image: np.ndarray,
    due: Sequence[Run],
    detections: Mapping[str, Any],
    poses: Mapping[str, Any],
) -> dict[int, list[Detection]]:
    """Second stage of the classifier cards: each scene's part of every person the person model
    found, classified in one batch per card (scenes asking the same share it); per run id."""
    futures: dict[tuple[Any, ...], Future[Any]] = {}
    keys: dict[int, tuple[Any, ...]] = {}
    for run in due:
        if run.classifier is None or run.model is None:
            continue
        floor = run.scene.base_threshold
        people = [d for d in detections[first_key(run)] if d.label == "person" and d.score >= floor]
        pose = poses[run.pose.name] if run.pose is not None else ()
        key = (run.classifier.name, run.crop, first_key(run), run.pose.name if run.pose else None, floor)
        keys[id(run)] = key
        if key not in futures:
            crop = run.crop or "person"
            boxes = crops.person_boxes(people, crop, pose)
            futures[key] = run.classifier.worker.submit((image, boxes, crops.crop_expand(crop), False))
    results = {key: fut.result(timeout=RESULT_TIMEOUT_S) for key, fut in futures.items()}
    return {rid: results[key] for rid, key in keys.items()}


def classifier_batch(classifier: ImageClassifier) -> Callable[[Sequence[Any]], list[Any]]:
    """Classifier cards take (image, boxes, expand, merge): every crop of the batch in one pass;
    ``merge``: overlapping windows on one object become one detection (scan windows)."""

    def run(items: Sequence[tuple[np.ndarray, list[Any], float, bool]]) -> list[Any]:
        jobs = [(image, boxes, expand) for image, boxes, expand, _ in items]
        answers = crops.classify_jobs(classifier, jobs)
        return [crops.merge_boxes(a) if merge else a for a, (*_, merge) in zip(answers, items, strict=True)]

    return run


def pose_batch(estimator: Any) -> Callable[[Sequence[Any]], list[Any]]:
    """Pose models take (image, person detections); whole-frame ones ignore the people."""

    def run(items: Sequence[tuple[np.ndarray, list[Any]]]) -> list[Any]:
        if isinstance(estimator, BlazePoseLandmarks):
            return [estimator.estimate(image, [d.box for d in people]) for image, people in items]
        return [estimator.estimate(image) for image, _ in items]

    return run
