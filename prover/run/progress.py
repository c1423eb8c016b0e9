"""Progress displays: of one search (``prover attack``) and of a batch run (``prove-split``,
``iterate``). On a terminal a live status line or bar (rich); elsewhere (a log file, SLURM,
CI) plain lines on stderr with the same figures.
"""

from __future__ import annotations

import sys
import time
from typing import Callable


class SearchProgress:
    """Live figures of one search: expansions, states, best open score, elapsed time — a
    status line on a terminal (at most 10 updates a second), else a line every 30 s."""

    def __init__(self, max_expansions: int, on_terminal: bool, heartbeat_s: float = 30.0):
        self.max_expansions, self.on_terminal, self.heartbeat_s = max_expansions, on_terminal, heartbeat_s
        self.started = self.last = time.monotonic()
        self.status = None

    def __enter__(self) -> "SearchProgress":
        if self.on_terminal:
            from rich.console import Console

            self.status = Console(stderr=True).status("starting the environment…")
            self.status.__enter__()
        return self

    def on_expansion(self, tree, node) -> None:
        now = time.monotonic()
        if now - self.last < (0.1 if self.on_terminal else self.heartbeat_s):
            return
        self.last = now
        open_scores = [
            a["priority"]
            for n, a in tree.graph.nodes(data=True)
            if n >= 0 and a.get("expanded_order") is None and a.get("priority") is not None and a["status"] == "open"
        ]
        best = f"{max(open_scores):.3g}" if open_scores else "-"
        text = (
            f"{tree.num_expanded}/{self.max_expansions} expansions, {plural(tree.num_states, 'state')}, "
            f"best open score {best}, {duration(now - self.started)}"
        )
        if self.status is not None:
            self.status.update(text)
        else:
            print(f"[{duration(now - self.started)}] {text}", file=sys.stderr, flush=True)

    def __exit__(self, *exc_info) -> None:
        if self.status is not None:
            self.status.__exit__(*exc_info)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


class RunProgress:
    """Progress of a batch run: log lines, and a live bar on top of them on a terminal.

    The lines go to stderr whatever the bar does (``--no-progress`` turns off only the bar):
    one as theorems finish (at most one per ``min_gap_s``) and at least one every
    ``heartbeat_s``. Bar and lines show the same figures: finished, proved, the pass rate
    over the whole set (as summary.json and ``prover report`` count it) and an ETA measured
    from ``on_started`` (Ray's start-up is not a search). ``mode``: ``bar`` (bar and
    lines), ``log`` (lines) or ``off`` (nothing)."""

    def __init__(
        self,
        total: int,
        done: int,
        mode: str,
        starting: str,
        heartbeat_s: float = 30.0,
        min_gap_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.total, self.done_before, self.mode, self.starting = total, done, mode, starting
        self.heartbeat_s, self.min_gap_s, self.clock = heartbeat_s, min_gap_s, clock
        self.finished, self.proved = done, 0
        self.started = self.clock()
        self.proving_since: float | None = None  # when the executor was up (on_started)
        self.last_line = 0.0
        self.bar = None
        self._stop = None

    def __enter__(self) -> "RunProgress":
        if self.mode == "bar":
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[figures]}"),
                console=Console(stderr=True),
            )
            self.bar.__enter__()
            self.task = self.bar.add_task(
                self.starting + "…", total=self.total, completed=self.finished, figures=self.figures()
            )
        if self.mode in ("bar", "log"):
            import threading

            self._line(f"{self.starting}; {self.total} theorems, {self.done_before} already finished")
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._heartbeat, daemon=True)
            self._thread.start()
        return self

    def on_started(self) -> None:
        self.proving_since = self.clock()
        if self.bar is not None:
            self.bar.update(self.task, description="proving")
        if self.mode in ("bar", "log"):
            self._line("started; proving")

    def on_result(self, record, summary) -> None:
        self.finished, self.proved = summary.num_finished, summary.num_proved
        if self.bar is not None:
            self.bar.update(self.task, completed=self.finished, figures=self.figures())
        if self.mode in ("bar", "log") and (
            self.clock() - self.last_line >= self.min_gap_s or self.finished == self.total
        ):
            self._status(f"{record.theorem}: {record.status.value}")

    def pass_rate_text(self) -> str:
        """The pass rate over the whole theorem set (unfinished theorems count against it)."""
        return f"{self.proved / self.total:.1%}" if self.total else "-"

    def eta(self) -> float | None:
        """Seconds left at the pace since the executor was up; None before a result of this session."""
        new = self.finished - self.done_before
        if not new or self.finished >= self.total:
            return None
        since = self.proving_since if self.proving_since is not None else self.started
        return (self.clock() - since) / new * (self.total - self.finished)

    def figures(self) -> str:
        eta = self.eta()
        return f"{self.proved} proved (pass rate {self.pass_rate_text()})" + (
            f", ETA {duration(eta)}" if eta is not None else ""
        )

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat_s / 4):
            if self.clock() - self.last_line >= self.heartbeat_s:
                self._status("still running")

    def _status(self, event: str) -> None:
        self._line(f"{self.finished}/{self.total} finished, {self.figures()}; {event}")

    def _line(self, text: str) -> None:
        self.last_line = self.clock()
        line = f"[{duration(self.last_line - self.started)}] {text}"
        if self.bar is not None:
            self.bar.console.print(line, highlight=False, markup=False)  # above the bar
        else:
            print(line, file=sys.stderr, flush=True)

    def __exit__(self, *exc_info) -> None:
        if self._stop is not None:
            self._stop.set()
        if self.bar is not None:
            self.bar.__exit__(*exc_info)


def duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
