"""The conversion engine: worker threads that run the blocks of every session, off the event loop.

Each worker owns a set of tasks (a session stays on one worker, so its state
is only ever touched by one thread) and runs passes: take at most one due
block from each task (round robin: a backlog cannot starve the others), group
the blocks by the voice's ``batch_key`` (the voice itself unless it names an
object it shares with other voices, as RVC voices name their content encoder)
and make one ``voice.run(streams, windows)`` call per group (the first voice of
the group runs the streams of all of them), finish every block, and hand the results over in
one :class:`PassReport` through ``dispatch`` (to the event loop in this
process, or down a pipe in an engine process, see :mod:`rtvc.session.procs`).
Between passes a worker sleeps until a task gets input or a throttled block
falls due.

Admission control: the busy fraction of the workers is measured; a new session
is refused (:class:`rtvc.errors.Overloaded`) when admitting it would push the
predicted load over ``max_load``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from rtvc.engine.load import Admission, LoadMeter
from rtvc.engine.settings import EngineSettings
from rtvc.pipeline import BlockJob
from rtvc.voices.base import Voice

if TYPE_CHECKING:
    from rtvc.session.queues import OutFrame

__all__ = ["Engine", "EngineTask", "Handle", "PassReport"]

log = logging.getLogger(__name__)


class EngineTask(Protocol):
    """What the engine runs: :class:`rtvc.session.stream.SessionStream`."""

    voice: Voice
    done: bool
    retry_at: float | None

    def next_job(self, now: float) -> BlockJob | None: ...

    def finish_job(self, job: BlockJob, rendered: np.ndarray, voice_s: float) -> OutFrame: ...

    def end_frame(self) -> OutFrame: ...


@dataclass(eq=False, slots=True)
class Handle:
    """A task as registered with the engine; ``key`` names it in reports."""

    task: EngineTask
    key: Any
    added: float = field(default_factory=time.perf_counter)
    removed: bool = False
    worker: _Worker | None = None


@dataclass(slots=True)
class PassReport:
    """What one pass of one worker produced (``perf_counter`` times: CLOCK_MONOTONIC, valid across processes)."""

    outputs: list[tuple[Handle, OutFrame]]
    failures: list[tuple[Handle, BaseException]]
    start: float
    end: float
    blocks_due: int
    voice_calls: int = 0
    voice_blocks: int = 0
    #: An early hand-over of finished blocks within a pass; the pass's own report (load, counts) follows.
    partial: bool = False


class _Worker:
    def __init__(self, index: int, engine: Engine) -> None:
        self.engine = engine
        self.handles: list[Handle] = []
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.load = LoadMeter(engine.settings.load_window_s)
        self.queue_depth = 0  # blocks found due in the last pass
        self._handoff: Callable[[PassReport], None] | None = None
        self._handed = 0.0  # when finished blocks were last handed off
        self.thread = threading.Thread(target=self._run, name=f"rtvc-engine-{index}", daemon=True)

    def _run(self) -> None:
        engine = self.engine
        while not engine.stopping:
            self.wake.clear()
            report, retry = self.step(handoff=engine.dispatch)
            if report is None:
                timeout = 0.5 if retry is None else max(0.0, min(0.5, retry - time.perf_counter()))
                self.wake.wait(timeout)
                continue
            try:
                engine.dispatch(report)
            except Exception:  # the receiver is gone (shutdown); keep the thread alive until stopped
                log.exception("engine: could not hand over a pass report")

    def step(self, max_rounds: int = 4, handoff: Callable[[PassReport], None] | None = None,
             ) -> tuple[PassReport | None, float | None]:
        """One pass: (its report, or None when nothing was due; the time a throttled block falls due, or None).

        A pass takes one due block per task per round (round robin) and runs up to
        ``max_rounds`` rounds while blocks are due, so a 20 ms frame holding two
        10 ms blocks costs one report, not two. ``handoff`` gets the blocks finished
        so far as a ``partial`` report every ``settings.handoff_ms`` during the pass.
        """
        self._handoff, self._handed = handoff, time.perf_counter()
        start = time.perf_counter()
        report = PassReport([], [], start, start, 0)
        retry: float | None = None
        for _ in range(max_rounds):
            with self.lock:
                handles = list(self.handles)
            jobs, retry = self._collect(handles, time.perf_counter(), report)
            report.blocks_due += len(jobs)
            if not jobs:
                break
            self._convert(jobs, report)
        self.queue_depth = report.blocks_due
        if not report.blocks_due and not report.outputs and not report.failures:
            return None, retry
        report.end = time.perf_counter()
        self.load.add(start, report.end)
        return report, retry

    def _collect(self, handles: list[Handle], now: float, report: PassReport):
        jobs: list[tuple[Handle, BlockJob]] = []
        retry: float | None = None
        for handle in handles:
            if handle.removed:
                continue
            task = handle.task
            try:
                job = task.next_job(now)
            except Exception as exc:  # a bad session must not stop the others
                report.failures.append((handle, exc))
                continue
            if job is not None:
                jobs.append((handle, job))
            elif task.done:
                report.outputs.append((handle, task.end_frame()))
                self.remove(handle)
            elif task.retry_at is not None:
                retry = task.retry_at if retry is None else min(retry, task.retry_at)
        return jobs, retry

    def _convert(self, jobs: list[tuple[Handle, BlockJob]], report: PassReport) -> None:
        groups: dict[int, list[tuple[Handle, BlockJob]]] = {}
        for handle, job in jobs:
            try:
                key = getattr(handle.task.voice, "batch_key", handle.task.voice)
            except Exception as exc:  # e.g. a voice whose model fails to load: fail that session only
                report.failures.append((handle, exc))
                continue
            groups.setdefault(id(key), []).append((handle, job))
        for batch in groups.values():
            voice = batch[0][0].task.voice
            for group in ([batch] if voice.batches else [[item] for item in batch]):
                self._convert_group(voice, group, report)
                self._hand_off(report)
        for handle, _ in report.failures:
            self.remove(handle)

    def _convert_group(self, voice: Voice, group: list[tuple[Handle, BlockJob]], report: PassReport) -> None:
        t0 = time.perf_counter()
        try:
            rendered = voice.run([job.stream for _, job in group], [job.window for _, job in group])
        except Exception as exc:  # the voice's state for this batch is unknown: fail the batch
            report.failures += [(handle, exc) for handle, _ in group]
            return
        voice_s = (time.perf_counter() - t0) / len(group)
        report.voice_calls += 1
        report.voice_blocks += len(group)
        for (handle, job), out in zip(group, rendered, strict=True):
            try:
                frame = handle.task.finish_job(job, out, voice_s)
            except Exception as exc:
                report.failures.append((handle, exc))
                continue
            report.outputs.append((handle, frame))
            if frame.last:
                self.remove(handle)

    def _hand_off(self, report: PassReport) -> None:
        now = time.perf_counter()
        if self._handoff is None or not report.outputs or now - self._handed < self.engine.settings.handoff_ms / 1e3:
            return
        self._handoff(PassReport(report.outputs, [], report.start, now, 0, partial=True))
        report.outputs = []
        self._handed = now

    def remove(self, handle: Handle) -> None:
        handle.removed = True
        with self.lock:
            if handle in self.handles:
                self.handles.remove(handle)


class Engine:
    """Runs tasks on ``settings.workers`` threads and hands each pass's results to ``dispatch``.

    ``dispatch(report)`` is called on the worker thread; it must not block for long.
    """

    def __init__(self, settings: EngineSettings | None = None, *,
                 dispatch: Callable[[PassReport], None] | None = None) -> None:
        self.settings = settings or EngineSettings()
        self.dispatch = dispatch or (lambda report: None)
        self.stopping = False
        self.admission = Admission(max_load=self.settings.max_load, window_s=self.settings.load_window_s)
        self._workers = [_Worker(i, self) for i in range(self.settings.workers)]
        self._started = False

    def step(self, handoff: Callable[[PassReport], None] | None = None) -> tuple[PassReport | None, float | None]:
        """Run one pass of the first worker on the calling thread (for a caller that owns the loop itself)."""
        return self._workers[0].step(handoff=handoff)

    def start(self) -> None:
        """Start the worker threads (not needed when the caller drives :meth:`step`)."""
        if not self._started:
            self._started = True
            for worker in self._workers:
                worker.thread.start()

    def stop(self) -> None:
        self.stopping = True
        for worker in self._workers:
            worker.wake.set()
        for worker in self._workers:
            if worker.thread.is_alive():
                worker.thread.join(timeout=5.0)

    def add(self, task: EngineTask, key: Any = None) -> Handle:
        worker = min(self._workers, key=lambda w: len(w.handles))
        handle = Handle(task, key, worker=worker)
        with worker.lock:
            worker.handles.append(handle)
        worker.wake.set()
        return handle

    @staticmethod
    def remove(handle: Handle) -> None:
        if handle.worker is not None:
            handle.worker.remove(handle)

    @staticmethod
    def wake(handle: Handle) -> None:
        if handle.worker is not None:
            handle.worker.wake.set()

    def admit(self, *, pending: int = 0) -> None:
        self.admission.check([w.load for w in self._workers], self.session_count(), pending=pending)

    def load(self, now: float | None = None) -> float:
        """Mean busy fraction of the workers over the load window (0..1)."""
        now = time.perf_counter() if now is None else now
        return sum(w.load.busy_fraction(now) for w in self._workers) / len(self._workers)

    def queue_depth(self) -> int:
        return sum(w.queue_depth for w in self._workers)

    def session_count(self) -> int:
        return sum(len(w.handles) for w in self._workers)
