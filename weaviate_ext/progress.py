"""Progress of long work (a plugin's ``build.sh``, a plugin's load): what runs and for how long.

Code that does long work wraps it in :func:`step`::

    with progress.step("building my-plugin", "built my-plugin") as s:
        ...                      # s.output(line) shows a line of the work's own output
        if failed:
            s.fail()             # an exception out of the block fails the step too

What a step shows depends on the :class:`Renderer` in use, which the application
chooses (:func:`using`, :func:`choose`); the library's default shows nothing. The
``weaviate-ext`` CLI uses :class:`Tty` (a ``rich`` spinner with the elapsed time) when
stderr is a terminal, :class:`Plain` otherwise (one line when a step starts, one when
it ends, with its time) and nothing under ``--json``.

A step made with ``after=S`` is shown only once it has run for ``S`` seconds (a
:class:`threading.Timer` announces it), and then its end too: a plugin that loads in a
few milliseconds adds no lines. The renderer is one for the process (not per thread):
a reload in a file watcher's thread reports through the same one.

This module imports nothing heavy; ``rich`` is imported when a :class:`Tty` renderer
first shows a step.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

LOAD_AFTER = 0.5
"""Seconds a plugin's load runs before it is shown (:func:`load_step`)."""


class Step:
    """One piece of long work while it runs: its text, when it started, how it went."""

    def __init__(self, text: str, done: str, after: float, renderer: Renderer) -> None:
        self.text = text
        """What is being done (``loading NAME (runtime)``)."""
        self.done = done
        """What has been done when it succeeds (``loaded NAME``)."""
        self.after = after
        self.ok = True
        self.started = time.monotonic()
        self.ended: float | None = None
        self.announced = False
        self.timer: threading.Timer | None = None
        self.renderer = renderer

    @property
    def elapsed(self) -> float:
        """Seconds since the step started (until it ended)."""
        return (self.ended if self.ended is not None else time.monotonic()) - self.started

    def output(self, line: str) -> None:
        """Show one line of the work's own output (a build's, with ``-v``)."""
        self.renderer.output(self, line)

    def fail(self) -> None:
        """Mark the step failed (its end says so)."""
        self.ok = False

    def end_text(self) -> str:
        """The line for the step's end: ``loaded NAME in 1.2 s`` or ``... failed after``."""
        if self.ok:
            return f"{self.done} in {self.elapsed:.1f} s"
        return f"{self.text}: failed after {self.elapsed:.1f} s"


class Renderer:
    """Shows steps; this base class shows nothing (the library's default)."""

    def begin(self, step: Step) -> None:
        """A step has started."""

    def output(self, step: Step, line: str) -> None:
        """A line of a step's own output."""

    def end(self, step: Step) -> None:
        """A step has ended (``step.ok`` says how)."""


class _Announcing(Renderer):
    """A renderer that announces a step at once or after ``step.after`` seconds, and
    shows its end only if it was announced. Subclasses say how lines look."""

    def __init__(self) -> None:
        self._lock = threading.RLock()

    def begin(self, step: Step) -> None:
        if step.after <= 0:
            self._announce(step)
            return
        step.timer = threading.Timer(step.after, self._announce, (step,))
        step.timer.daemon = True
        step.timer.start()

    def _announce(self, step: Step) -> None:
        with self._lock:
            if step.announced or step.ended is not None:
                return
            step.announced = True
            self.show_start(step)

    def output(self, step: Step, line: str) -> None:
        with self._lock:
            self._announce(step)
            self.show_output(step, line)

    def end(self, step: Step) -> None:
        if step.timer is not None:
            step.timer.cancel()
        with self._lock:
            step.ended = time.monotonic()
            if step.announced:
                self.show_end(step)

    def show_start(self, step: Step) -> None:
        raise NotImplementedError

    def show_output(self, step: Step, line: str) -> None:
        raise NotImplementedError

    def show_end(self, step: Step) -> None:
        raise NotImplementedError


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Plain(_Announcing):
    """One line when a step starts (``loading NAME (python) ...``), one when it ends
    (``loaded NAME in 1.2 s``), written with ``write`` (default: to stderr)."""

    def __init__(self, write: Callable[[str], None] | None = None) -> None:
        super().__init__()
        self.write = write or _stderr

    def show_start(self, step: Step) -> None:
        self.write(f"{step.text} ...")

    def show_output(self, step: Step, line: str) -> None:
        self.write(f"    {line}")

    def show_end(self, step: Step) -> None:
        self.write(step.end_text())


class Tty(_Announcing):
    """A ``rich`` spinner with the step's text and elapsed time while it runs, then one
    line (``✓ loaded NAME in 1.2 s``); output lines print above the spinner.

    ``console`` is a ``rich.console.Console`` (default: one on stderr); ``clean`` is
    applied to every line shown (the CLI scrubs secrets with it).
    """

    def __init__(self, console: Any = None, clean: Callable[[str], str] | None = None) -> None:
        super().__init__()
        self._console = console
        self._clean = clean or (lambda text: text)
        self._live: Any = None  # the rich Progress of the step shown, if any
        self._live_step: Step | None = None

    @property
    def console(self) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True)
        return self._console

    def _print(self, text: str, style: str | None = None) -> None:
        self.console.print(self._clean(text), style=style, markup=False, highlight=False)

    def show_start(self, step: Step) -> None:
        if self._live is not None:  # one live display at a time: a nested step is a line
            self._print(f"{step.text} ...")
            return
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        live = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
            redirect_stdout=False,  # stdout may be a pipe while stderr is the terminal
        )
        live.add_task(self._clean(step.text), total=None)
        live.start()
        self._live, self._live_step = live, step

    def show_output(self, step: Step, line: str) -> None:
        self._print(f"    {line}")

    def show_end(self, step: Step) -> None:
        if self._live_step is step:
            self._live.stop()
            self._live, self._live_step = None, None
        if step.ok:
            self._print(f"✓ {step.end_text()}", style="green")
        else:
            self._print(f"✗ {step.end_text()}", style="red")


_renderer: Renderer = Renderer()


def current() -> Renderer:
    """The renderer in use."""
    return _renderer


def set_renderer(renderer: Renderer) -> Renderer:
    """Use ``renderer`` for the steps of the whole process; returns the one it replaces."""
    global _renderer
    previous, _renderer = _renderer, renderer
    return previous


@contextlib.contextmanager
def using(renderer: Renderer) -> Iterator[Renderer]:
    """Use ``renderer`` for the steps of the whole process while the block runs."""
    previous = set_renderer(renderer)
    try:
        yield renderer
    finally:
        set_renderer(previous)


def choose(
    *,
    quiet: bool = False,
    stream: IO[str] | None = None,
    write: Callable[[str], None] | None = None,
    clean: Callable[[str], str] | None = None,
) -> Renderer:
    """The renderer for a command: nothing if ``quiet``, :class:`Tty` if ``stream``
    (default stderr) is a terminal, else :class:`Plain` (with ``write``)."""
    if quiet:
        return Renderer()
    stream = stream if stream is not None else sys.stderr
    try:
        terminal = stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):  # a closed or an odd stream
        terminal = False
    return Tty(clean=clean) if terminal else Plain(write)


@contextlib.contextmanager
def step(text: str, done: str | None = None, *, after: float = 0.0) -> Iterator[Step]:
    """Report the work of the block as a step: ``text`` while it runs, ``done`` (default
    ``text``) with its time when it succeeds; shown only after ``after`` seconds."""
    renderer = _renderer
    current_step = Step(text, done if done is not None else text, after, renderer)
    renderer.begin(current_step)
    try:
        yield current_step
    except BaseException:
        current_step.fail()
        raise
    finally:
        renderer.end(current_step)


def load_step(name: str, runtime: str) -> contextlib.AbstractContextManager[Step]:
    """The step of a plugin's load (shown once it takes :data:`LOAD_AFTER` seconds)."""
    return step(f"loading {name} ({runtime})", f"loaded {name}", after=LOAD_AFTER)
