"""Progress of long stages: rich bars on a terminal, timed lines where there is none.

A stage is one long step with a known count: a cell's predictions, a fine-tune's training steps,
a corpus's embeddings. On a terminal each stage is a rich bar. Elsewhere (a log file under nohup,
CI, a notebook running the command) rich draws a live display once, when it closes, so a log showed
nothing for the half hour a LoRA trained. There each stage prints a start line, a progress line at
a steady pace (`Pace`) and an end line with its time, each flushed as it is written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Protocol

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Stage(Protocol):
    """Reports one stage's progress (what `StageFactory` returns)."""

    def __call__(self, n: int = 1, detail: str = "") -> None:
        """`n` more done; `detail`: the latest readings worth showing (e.g. loss, tokens/s)."""

    def finish(self) -> None:
        """The stage is over, maybe short of its total (early stopping); later calls are ignored."""


class StageFactory(Protocol):
    """progress(label, total, unit) -> the Stage to advance; what ArmContext.progress holds."""

    def __call__(self, label: str, total: int, unit: str = "") -> Stage: ...


class NullStage:
    """A stage nobody watches."""

    def __call__(self, n: int = 1, detail: str = "") -> None:
        pass

    def finish(self) -> None:
        pass


def no_progress(label: str, total: int, unit: str = "") -> Stage:
    return NullStage()


@dataclass(frozen=True)
class Pace:
    """When a stage prints a progress line where there is no terminal."""

    interval_s: float = 30.0
    """A line at least this often while a stage runs (seconds)."""
    fraction: float = 0.10
    """...or as soon as this share of the stage was done since the last line, whichever comes first."""
    min_gap_s: float = 3.0
    """...but never two lines closer than this: a stage of a few seconds prints its start and end only."""


class Display(Protocol):
    """What the runner reports to: stages with a count, timed steps without one, cached cells, notes."""

    def stage(self, label: str, total: int, unit: str = "") -> Stage: ...

    def timed(self, label: str) -> AbstractContextManager[None]: ...

    def cached(self, label: str, n: int) -> None: ...

    def log(self, message: str) -> None: ...


@contextmanager
def open_display(console: Console, *, pace: Pace = Pace(),
                 clock: Callable[[], float] = time.monotonic) -> Iterator[Display]:
    """Rich bars where the console is a live terminal (or Jupyter), timed lines everywhere else."""
    if console.is_jupyter or (console.is_terminal and not console.is_dumb_terminal):
        with TerminalDisplay(console) as display:
            yield display
    else:
        display = LogDisplay(console, pace=pace, clock=clock)
        try:
            yield display
        finally:
            display.close()


# -- a terminal: rich bars ---------------------------------------------------------------------


class TerminalDisplay:
    """Rich progress bars, one per stage; the detail column shows e.g. a training loss."""

    def __init__(self, console: Console):
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[detail]}"),
                                 console=console, transient=False)

    def __enter__(self) -> TerminalDisplay:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def stage(self, label: str, total: int, unit: str = "") -> Stage:
        return _Bar(self.progress, self.progress.add_task(escape(label), total=total, detail=""))

    @contextmanager
    def timed(self, label: str) -> Iterator[None]:
        task = self.progress.add_task(escape(label), total=None, detail="")  # a pulsing bar: no count to show
        t0 = time.perf_counter()
        yield
        self.progress.update(task, total=1, completed=1, detail=f"{time.perf_counter() - t0:.1f}s")

    def cached(self, label: str, n: int) -> None:
        self.progress.add_task(escape(f"{label} (cached)"), total=n, completed=n, detail="")

    def log(self, message: str) -> None:
        # plain text: notes are not rich markup ('[finetune] ...' would vanish as an unknown tag)
        self.progress.console.print(message, markup=False, highlight=False)


class _Bar:
    def __init__(self, progress: Progress, task: TaskID):
        self.progress, self.task = progress, task

    def __call__(self, n: int = 1, detail: str = "") -> None:
        self.progress.update(self.task, advance=n, **({"detail": escape(detail)} if detail else {}))

    def finish(self) -> None:
        self.progress.stop_task(self.task)


# -- no terminal: timed lines -----------------------------------------------------------------


class LogDisplay:
    """One line per stage start and end, and progress lines at the pace of `pace`."""

    def __init__(self, console: Console, *, pace: Pace = Pace(), clock: Callable[[], float] = time.monotonic):
        self.console, self.pace, self.clock = console, pace, clock
        self.open: list[_LoggedStage] = []

    def line(self, text: str) -> None:
        # not rich markup (labels hold brackets), never wrapped; rich flushes after each print
        self.console.print(f"{time.strftime('%H:%M:%S')}  {text}", markup=False, highlight=False, soft_wrap=True)

    def stage(self, label: str, total: int, unit: str = "") -> Stage:
        return _LoggedStage(self, label, total, unit)

    @contextmanager
    def timed(self, label: str) -> Iterator[None]:
        self.line(f"{label}: started")
        t0 = self.clock()
        try:
            yield
        except BaseException:
            self.line(f"{label}: failed after {duration(self.clock() - t0)}")
            raise
        self.line(f"{label}: done in {duration(self.clock() - t0)}")

    def cached(self, label: str, n: int) -> None:
        self.line(f"{label}: {n} from the cache")

    def log(self, message: str) -> None:
        self.line(message)

    def close(self) -> None:
        """Stages still open when the run ends (an error, an interrupt) say where they stopped."""
        for stage in list(self.open):
            stage.finish()


class _LoggedStage:
    def __init__(self, display: LogDisplay, label: str, total: int, unit: str):
        self.display, self.label, self.total, self.unit = display, label, total, unit
        self.done, self.detail, self.over = 0, "", False
        self.started = self.last_at = display.clock()
        self.last_done = 0
        display.open.append(self)
        display.line(f"{label}: started, {total} {unit}".rstrip())
        if total <= 0:  # nothing to do: no later call would end it
            self.finish()

    def __call__(self, n: int = 1, detail: str = "") -> None:
        if self.over:
            return
        self.done += n
        self.detail = detail or self.detail
        if self.done >= self.total:
            self.finish()
        elif self._due(self.display.clock()):
            self.display.line(f"{self.label}: {self._count()} ({self.done / max(1, self.total):.0%}), {self._rate()}, "
                              f"ETA {duration(self._eta())}{self._detail()}")

    def _due(self, now: float) -> bool:
        pace, since = self.display.pace, now - self.last_at
        share = (self.done - self.last_done) / max(1, self.total)
        if since < pace.min_gap_s or not (since >= pace.interval_s or share >= pace.fraction):
            return False
        self.last_at, self.last_done = now, self.done
        return True

    def finish(self) -> None:
        if self.over:
            return
        self.over = True
        self.display.open.remove(self)
        short = "" if self.done >= self.total else " (stopped short)"
        self.display.line(f"{self.label}: done{short}, {self._count()} in {duration(self._elapsed())} "
                          f"({self._rate()}){self._detail()}")

    def _elapsed(self) -> float:
        return self.display.clock() - self.started

    def _count(self) -> str:
        return f"{self.done}/{self.total} {self.unit}".rstrip()

    def _rate(self) -> str:
        elapsed = self._elapsed()
        per_s = self.done / elapsed if elapsed > 0 else 0.0
        return f"{per_s:.3g} {self.unit}/s" if self.unit else f"{per_s:.3g}/s"

    def _eta(self) -> float:
        elapsed = self._elapsed()
        return (self.total - self.done) * elapsed / self.done if self.done else float("inf")

    def _detail(self) -> str:
        return f", {self.detail}" if self.detail else ""


def duration(seconds: float) -> str:
    """3.2s, 4m05s, 1h02m: short enough for a progress line."""
    if seconds != seconds or seconds == float("inf"):
        return "?"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"
