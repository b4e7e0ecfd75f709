"""The education case from the seeds: learners who buy a course and stall along the way.

Some customers (most often those who favour courses or books) buy an online
course, then complete lessons at a few days' pace and may pass the final exam.
Each learner is headed for one outcome: never starting, stopping part-way,
finishing (a ``course_completed`` event at the last lesson) without the
certificate, or certifying; churn and the end of the
period can cut a path short, and the ground truth records where it stood.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from perennial.demo.catalog import CATEGORIES
from perennial.demo.events import EventBatch, EventType
from perennial.demo.fixed_width import join_columns
from perennial.demo.population import Population

__all__ = ["COURSES", "EDUCATION_STATUSES", "NOT_A_LEARNER", "learning_journeys"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

COURSES = (("CRS-101", 12), ("CRS-120", 10), ("CRS-205", 16), ("CRS-310", 24), ("CRS-402", 30))
"""Course id and number of lessons."""

EDUCATION_STATUSES = ("bought_not_started", "in_progress", "finished_no_certificate", "certified")
NOT_A_LEARNER = -1

_NOT_STARTED, _IN_PROGRESS, _FINISHED, _CERTIFIED = range(4)
_HEADED_FOR = np.array([0.28, 0.4, 0.14, 0.18])  # the share each outcome is planned for
_LEARNER_SHARE = {"courses": 0.35, "books": 0.15}
_OTHER_LEARNER_SHARE = 0.05
_MEAN_DAYS_TO_PURCHASE = 20.0


def learning_journeys(
    rng: np.random.Generator,
    population: Population,
    limit_days: FloatArray,
) -> tuple[EventBatch, IntArray]:
    """Course events of the block, and each customer's status (``NOT_A_LEARNER`` if none).

    Events after a learner's last active instant (``limit_days``: churn, or the
    period's end) are left out here, so the status is exactly what the events show.
    """
    share = np.array([_LEARNER_SHARE.get(c.name, _OTHER_LEARNER_SHARE) for c in CATEGORIES])
    purchase = population.signup_days + rng.exponential(_MEAN_DAYS_TO_PURCHASE, population.size)
    limit = limit_days
    learners = np.flatnonzero(
        (rng.random(population.size) < share[population.favourite_category]) & (purchase <= limit)
    )
    purchase = purchase[learners]
    course = rng.integers(0, len(COURSES), learners.shape[0])
    lessons = np.array([n for _, n in COURSES])[course]
    headed = rng.choice(4, size=learners.shape[0], p=_HEADED_FOR)
    planned = np.select(
        [headed == _NOT_STARTED, headed == _IN_PROGRESS],
        [0, 1 + np.floor(rng.beta(1.0, 2.0, learners.shape[0]) * (lessons - 1)).astype(np.int64)],
        lessons,
    )

    owner = np.repeat(np.arange(learners.shape[0]), planned)
    rank = np.arange(owner.shape[0]) - np.repeat(np.cumsum(planned) - planned, planned)
    gaps = 0.5 + rng.exponential(3.0, owner.shape[0])
    gaps[rank == 0] += rng.exponential(4.0, int((rank == 0).sum()))
    lesson_days = purchase[owner] + _cumsum_by_group(gaps, planned)
    lesson_kept = lesson_days <= limit[learners][owner]

    last_lesson = np.full(learners.shape[0], -np.inf)
    np.maximum.at(last_lesson, owner, lesson_days)
    exam_days = last_lesson + 3.0 + rng.exponential(14.0, learners.shape[0])
    exam_kept = (headed == _CERTIFIED) & (exam_days <= limit[learners])

    completed = np.bincount(owner[lesson_kept], minlength=learners.shape[0])
    finished = (completed == lessons) & (lessons > 0)
    status = np.select(
        [completed == 0, completed < lessons, ~exam_kept], [_NOT_STARTED, _IN_PROGRESS, _FINISHED],
        _CERTIFIED,
    )  # fmt: skip
    statuses = np.full(population.size, NOT_A_LEARNER, dtype=np.int64)
    statuses[learners] = status

    course_ids = pa.array([c for c, _ in COURSES]).take(pa.array(course))
    course_json = join_columns('{"course_id":"', course_ids, '"')
    events = EventBatch.concat(
        [
            _batch(learners, purchase, EventType.COURSE_PURCHASED, course_json,
                   ',"lessons":', lessons),
            _batch(learners[owner[lesson_kept]], lesson_days[lesson_kept],
                   EventType.LESSON_COMPLETED, course_json.take(pa.array(owner[lesson_kept])),
                   ',"lesson":', rank[lesson_kept] + 1),
            _batch(learners[finished], last_lesson[finished], EventType.COURSE_COMPLETED,
                   course_json.filter(pa.array(finished)), ',"lessons":', lessons[finished]),
            _batch(learners[exam_kept], exam_days[exam_kept], EventType.EXAM_PASSED,
                   course_json.filter(pa.array(exam_kept)), ',"score":',
                   rng.integers(60, 101, learners.shape[0])[exam_kept]),
        ]
    )  # fmt: skip
    return events, statuses


def _batch(
    customer: IntArray,
    days: FloatArray,
    kind: int,
    head: pa.Array,
    key: str,
    numbers: IntArray,
) -> EventBatch:
    text = pc.cast(pa.array(np.asarray(numbers, dtype=np.int64)), pa.string())
    return EventBatch(
        customer=customer,
        days=days,
        kind=np.full(customer.shape[0], kind),
        properties=join_columns(head, key, text, "}"),
    )


def _cumsum_by_group(values: FloatArray, sizes: IntArray) -> FloatArray:
    """Running sums that restart at each group of ``sizes`` consecutive values."""
    running = np.cumsum(values)
    ends = np.cumsum(sizes)
    before_group = np.concatenate(([0.0], running))[ends - sizes]
    return np.asarray(running - np.repeat(before_group, sizes), dtype=np.float64)
