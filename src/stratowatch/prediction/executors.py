"""Where ensembles run: an in-process pool by default, a Dask cluster when configured.

An :class:`EnsembleExecutor` is anything with ``submit(fn, *args) -> Future`` (and ``share``,
``workers``, ``close``). :func:`predict_tracks` cuts each track's ensemble into chunks of members
(by member index; see :mod:`stratowatch.prediction.ensemble`: a member's draws and wind-error
seed depend only on the run's seed and its index), runs the chunks on the executor and joins
them, so the result is the same, bit for bit, whichever executor ran it and however it was cut::

    from stratowatch.prediction.executors import EnsembleJob, LocalExecutor, DaskExecutor, predict_tracks

    jobs = [EnsembleJob(key=t.track_id, state=state_of(t), covariance=cov_of(t), hours=48,
                        members=1000, seed=t.track_id) for t in balloons]
    with LocalExecutor(max_workers=2) as ex:                  # spawn process pool
        predictions = predict_tracks(jobs, grid, ex)
    with DaskExecutor("tcp://scheduler:8786") as ex:          # a dask.distributed cluster
        same = predict_tracks(jobs, grid, ex)
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import multiprocessing
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np
import numpy.typing as npt

from stratowatch.prediction.ensemble import TrackState, predict_track
from stratowatch.prediction.integrate import Prediction, WindErrorModel, _notes
from stratowatch.prediction.profiles import FlightProfile
from stratowatch.weather.grid import WindGrid
from stratowatch.weather.interp import pack

log = logging.getLogger(__name__)

T = TypeVar("T")


@runtime_checkable
class EnsembleExecutor(Protocol):
    """Runs functions somewhere and hands back futures."""

    @property
    def workers(self) -> int:
        """How many tasks it runs at once (to size the chunks)."""
        ...

    def submit(self, fn: Callable[..., T], /, *args: Any) -> concurrent.futures.Future[T]: ...

    def share(self, value: T) -> Any:
        """A handle to pass to tasks in place of a large value used by many (the wind grid)."""
        ...

    def close(self) -> None: ...


class LocalExecutor:
    """A process pool on this machine (spawn start method, so it is safe beside threads).

    ``max_workers=0`` runs tasks inline in the calling thread (no pool), which is what a test or
    a one-core box may want.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        n = multiprocessing.cpu_count() if max_workers is None else max_workers
        if n < 0:
            raise ValueError("max_workers must be >= 0")
        self._workers = max(1, n)
        self._pool = (
            concurrent.futures.ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"))
            if n > 0
            else None
        )

    @property
    def workers(self) -> int:
        return self._workers

    def submit(self, fn: Callable[..., T], /, *args: Any) -> concurrent.futures.Future[T]:
        if self._pool is not None:
            return self._pool.submit(fn, *args)
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()
        try:
            fut.set_result(fn(*args))
        except Exception as exc:
            fut.set_exception(exc)
        return fut

    def share(self, value: T) -> T:
        return value  # pickled with each task

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DaskExecutor:
    """Tasks on a dask.distributed cluster: a scheduler address (``tcp://host:8786``) or a Client.

    Large shared values (the wind grid) are scattered to every worker once (:meth:`share`).
    """

    def __init__(self, scheduler: Any, *, timeout_s: float = 30.0) -> None:
        try:
            from distributed import Client
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError(
                "the Dask executor needs dask.distributed: pip install 'stratowatch[scale]'"
            ) from exc
        if isinstance(scheduler, Client):
            self.client = scheduler
            self._own = False
        else:
            self.client = Client(scheduler, timeout=f"{timeout_s}s", set_as_default=False)
            self._own = True
        self._lock = threading.Lock()

    @property
    def workers(self) -> int:
        info = self.client.scheduler_info()
        return max(1, sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values()))

    def submit(self, fn: Callable[..., T], /, *args: Any) -> concurrent.futures.Future[T]:
        out: concurrent.futures.Future[T] = concurrent.futures.Future()
        dask_future = self.client.submit(fn, *args, pure=False)

        def done(f: Any) -> None:
            try:
                out.set_result(f.result())
            except Exception as exc:
                out.set_exception(exc)

        dask_future.add_done_callback(done)
        return out

    def share(self, value: T) -> Any:
        with self._lock:
            return self.client.scatter(value, broadcast=True, hash=False)

    def close(self) -> None:
        if self._own:
            self.client.close()

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class EnsembleJob:
    """One track's ensemble: the arguments of :func:`~stratowatch.prediction.predict_track`."""

    key: Any
    state: TrackState
    covariance: npt.NDArray[np.float64] | None
    hours: float
    members: int
    seed: int = 0
    profile: FlightProfile | None = None
    wind_error: WindErrorModel | None = None
    backward: bool = False

    def __post_init__(self) -> None:
        if self.members < 1:
            raise ValueError(f"ensemble job {self.key!r}: members must be >= 1, got {self.members}")


def _run_chunk(grid: WindGrid, job: EnsembleJob, first: int, stop: int) -> Prediction:
    return predict_track(
        job.state, job.covariance, grid, job.hours, job.members, job.seed,
        profile=job.profile, wind_error=job.wind_error, backward=job.backward,
        member_range=(first, stop),
    )  # fmt: skip


def chunks(members: int, size: int) -> list[tuple[int, int]]:
    """Member index ranges [a, b) of at most ``size`` members covering 0..members."""
    size = max(1, size)
    return [(a, min(members, a + size)) for a in range(0, members, size)]


def join(parts: Sequence[Prediction], grid: WindGrid) -> Prediction:
    """Concatenate consecutive member chunks of one ensemble into the whole run's Prediction."""
    if len(parts) == 1:
        return parts[0]
    g = pack(grid)

    def run_notes(p: Prediction) -> list[str]:
        flags = p.member_flags if p.member_flags is not None else np.zeros(p.members, np.int64)
        return _notes(g.source, g.time_s, flags, p.status, p.members)

    first = parts[0]
    ensemble_notes = first.notes[: len(first.notes) - len(run_notes(first))]
    flags = np.concatenate(
        [p.member_flags if p.member_flags is not None else np.zeros(p.members, np.int64) for p in parts]
    )
    status = np.concatenate([p.status for p in parts])
    return replace(
        first,
        lat_deg=np.concatenate([p.lat_deg for p in parts]),
        lon_deg=np.concatenate([p.lon_deg for p in parts]),
        alt_m=np.concatenate([p.alt_m for p in parts]),
        status=status,
        end_time_s=np.concatenate([p.end_time_s for p in parts]),
        burst_time_s=np.concatenate([p.burst_time_s for p in parts]),
        member_flags=flags,
        notes=tuple(ensemble_notes) + tuple(_notes(g.source, g.time_s, flags, status, len(status))),
    )


def predict_tracks(
    jobs: Sequence[EnsembleJob],
    grid: WindGrid,
    executor: EnsembleExecutor | None = None,
    *,
    members_per_task: int | None = None,
) -> list[Prediction]:
    """Every job's ensemble, run on ``executor`` (inline when None), in the order of ``jobs``.

    Members are cut into tasks of ``members_per_task`` (default: enough tasks for about two per
    worker over all jobs, at least 50 members each). The result does not depend on the cut.
    """
    if not jobs:
        return []
    if executor is None:
        return [join([_run_chunk(grid, j, 0, j.members)], grid) for j in jobs]
    if members_per_task is None:
        total = sum(j.members for j in jobs)
        members_per_task = max(50, math.ceil(total / (2 * executor.workers)))
    shared = executor.share(grid)
    futures = [
        [executor.submit(_run_chunk, shared, job, a, b) for a, b in chunks(job.members, members_per_task)]
        for job in jobs
    ]
    return [join([f.result() for f in parts], grid) for parts in futures]


__all__ = [
    "DaskExecutor",
    "EnsembleExecutor",
    "EnsembleJob",
    "LocalExecutor",
    "chunks",
    "join",
    "predict_tracks",
]
