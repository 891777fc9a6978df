"""``weaviate-ext dev``: build, load, watch, rebuild and hot-reload a plugin.

A :class:`DevSession` owns a :class:`~weaviate_ext.PluginManager` with the one plugin
under development. :meth:`DevSession.start` builds and loads it; :meth:`rebuild`
(called by :func:`watch_sources` on every change) builds it again and swaps the new
version in with :meth:`PluginManager.reload` (built, set up, health-checked and probed
before the swap; calls in flight finish on the old version). A failed build or a
failed reload leaves the last good version serving. After each (re)load the
conformance suite of the plugin's type runs and its result is reported.

A ``native`` plugin is a shared library, and a process loads a library file once: a
reload of the same path would keep running the old code. The session therefore loads
a copy of each new build, under a fresh hidden name next to the original
(``.wvx-dev-<pid>-<n>-plugin.so``), through a hidden copy of the manifest that names
it; both are removed when the session ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import watchfiles

from weaviate_ext.errors import WeaviateExtError
from weaviate_ext.handles import PluginHandle
from weaviate_ext.manager import PluginManager
from weaviate_ext.manifest import Manifest, load_manifest
from weaviate_ext.scaffold.build import BuildResult, find_manifest, run_build, set_spec_field
from weaviate_ext.testing import ConformanceReport, check_plugin

STAGE_PREFIX = ".wvx-dev-"
"""Hidden files a session writes into the plugin directory (removed at the end)."""

IGNORED_DIRS = frozenset(
    {"build", "target", "dist", "node_modules", "__pycache__", "tests", "venv"}
)
"""Directories whose changes never trigger a rebuild (outputs, dependencies, tests)."""

IGNORED_SUFFIXES = (".wasm", ".so", ".tmp", ".pyc", ".pyo", ".lock", ".swp", ".swx", "~")
"""File endings whose changes never trigger a rebuild (build outputs, editor files)."""

IGNORED_NAMES = frozenset({"package-lock.json", "4913"})  # 4913: vim's write probe
"""File names whose changes never trigger a rebuild."""

Echo = Callable[[str], None]


class SourceFilter:
    """The ``watch_filter`` of a plugin directory: its sources, not its build outputs."""

    def __init__(self, directory: Path, outputs: Iterable[Path] = ()) -> None:
        self.directory = directory.resolve()
        self.outputs = {p.resolve() for p in outputs}

    def __call__(self, change: watchfiles.Change, path: str) -> bool:
        """Whether a change of ``path`` should rebuild the plugin."""
        resolved = Path(path)
        try:
            rel = resolved.relative_to(self.directory)
        except ValueError:
            return False
        parts = rel.parts
        if not parts or any(p.startswith(".") for p in parts):
            return False
        if any(p in IGNORED_DIRS for p in parts[:-1]) or parts[0] in IGNORED_DIRS:
            return False
        name = parts[-1]
        if name in IGNORED_NAMES or name.endswith(IGNORED_SUFFIXES) or ".tmp" in name:
            return False
        return resolved not in self.outputs

    def sources(self) -> set[Path]:
        """The files below the directory that pass the filter, as they are now."""
        found = set()
        for root, dirs, names in os.walk(self.directory):
            dirs[:] = [d for d in dirs if not d.startswith(".") and d not in IGNORED_DIRS]
            for name in names:
                path = Path(root) / name
                if self(watchfiles.Change.modified, str(path)):
                    found.add(path)
        return found


class DevSession:
    """One plugin under development: its manager, its builds and its loaded version."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        echo: Echo,
        config: Mapping[str, Any] | None = None,
        build: bool = True,
        conformance: bool = True,
        conformance_options: Mapping[str, Any] | None = None,
        stream_builds: bool = False,
    ) -> None:
        self.manifest_path = find_manifest(path).resolve()
        self.directory = self.manifest_path.parent
        self.echo = echo
        self.config = dict(config) if config is not None else None
        self.build_enabled = build
        self.conformance = conformance
        self.conformance_options = dict(conformance_options or {})
        self.stream_builds = stream_builds
        """Show each build's output as it comes (``-v``), not only its end on failure."""
        self.manager = PluginManager(discover=False)
        self.name: str | None = None
        self.builds = 0
        self.reloads = 0
        self._generation = 0
        self._staged: list[Path] = []
        self._lock = threading.Lock()
        outputs = []
        try:
            binary = load_manifest(self.manifest_path, check_files=False).binary_path
        except WeaviateExtError:
            binary = None
        if binary is not None:
            outputs.append(binary)
        self.filter = SourceFilter(self.directory, outputs)
        """Which changes below the directory are source changes."""
        self.source_times: dict[Path, int] = {}
        """Modification times of the sources when the last build started."""

    # -- reporting -----------------------------------------------------------------------

    def say(self, text: str) -> None:
        """One timestamped line of the session's log."""
        self.echo(f"[{time.strftime('%H:%M:%S')}] {text}")

    # -- the steps -------------------------------------------------------------------------

    def _build(self) -> BuildResult | None:
        self.source_times = _mtimes(self.filter.sources())
        if not self.build_enabled:
            return None
        self.say("building ...")
        stream = (lambda line: self.echo(f"    {line}")) if self.stream_builds else None
        result = run_build(self.directory, on_output=stream)
        self.builds += 1
        if result.ok:
            self.say(f"build ok ({result.seconds:.1f}s)")
        else:
            code = f"exit {result.returncode}" if result.returncode is not None else "failed"
            self.say(f"build FAILED ({code}, {result.seconds:.1f}s):")
            for line in [] if self.stream_builds else result.tail().splitlines():
                self.echo(f"    {line}")
        return result

    def _stage(self, manifest: Manifest) -> Path:
        """The manifest to load: the plugin's own, or a fresh copy for a native library."""
        if manifest.spec.runtime != "native" or manifest.binary_path is None:
            return self.manifest_path
        binary = manifest.binary_path
        if not binary.is_file():
            return self.manifest_path  # the load reports the missing binary
        self._generation += 1
        staged = binary.with_name(f"{STAGE_PREFIX}{os.getpid()}-{self._generation}-{binary.name}")
        shutil.copy2(binary, staged)
        self._staged.append(staged)
        rel = staged.relative_to(manifest.directory).as_posix()
        text = self.manifest_path.read_text(encoding="utf-8")
        text = set_spec_field(manifest, text, "binary", f"./{rel}", "binary")
        staged_manifest = self.directory / f"{STAGE_PREFIX}{os.getpid()}-{self.manifest_path.name}"
        temporary = staged_manifest.with_name(staged_manifest.name + ".tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(staged_manifest)
        if staged_manifest not in self._staged:
            self._staged.append(staged_manifest)
        return staged_manifest

    def _load(self) -> bool:
        """Load (first time) or reload the current build; False if it failed."""
        try:
            manifest = load_manifest(self.manifest_path)
            path = self._stage(manifest)
            if self.name is None:
                self.manager.load(path, config=self.config)
                self.name = manifest.name
                self.say(
                    f"loaded {manifest.name} {manifest.version} "
                    f"({manifest.spec.type}, runtime {manifest.spec.runtime})"
                )
            elif manifest.name != self.name:
                self.manager.unload(self.name)
                self.name = None
                self.manager.load(path, config=self.config)
                self.name = manifest.name
                self.say(f"loaded {manifest.name} {manifest.version} (the name changed)")
            else:
                self.manager.reload(self.name, path, config=self.config)
                self.reloads += 1
                self.say(f"reloaded {manifest.name} {manifest.version}")
        except WeaviateExtError as exc:
            kept = "; the last good version keeps serving" if self.name else ""
            self.say(f"load FAILED{kept}:")
            for line in str(exc).splitlines():
                self.echo(f"    {line}")
            return False
        return True

    def _check(self) -> ConformanceReport | None:
        if not self.conformance or self.name is None:
            return None
        report = check_plugin(self.manager.get(self.name), **self.conformance_options)
        failed = len(report.failures)
        skipped = sum(1 for r in report.results if r.skipped)
        counts = f"{len(report) - failed} passed, {failed} failed"
        if skipped:
            counts += f" ({skipped} skipped)"
        self.say(f"conformance: {counts}")
        for result in report.results:
            if not result.passed or result.skipped:
                self.echo(f"    {result}")
        return report

    # -- the loop ----------------------------------------------------------------------------

    def start(self) -> bool:
        """Build and load the plugin, run the conformance suite; whether it is loaded."""
        with self._lock:
            result = self._build()
            if result is not None and not result.ok:
                self.say("not loaded: fix the build, the next change retries")
                return False
            if self._load():
                self._check()
            return self.name is not None

    def rebuild(self, changed: Iterable[str] = ()) -> bool:
        """Build again and hot-reload; whether a new version was swapped in."""
        with self._lock:
            names = sorted({os.path.relpath(p, self.directory) for p in changed})
            if names:
                shown = ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
                self.say(f"changed: {shown}")
            result = self._build()
            if result is not None and not result.ok:
                if self.name is not None:
                    self.say("keeping the last good version loaded")
                return False
            loaded = self._load()
            if loaded:
                self._check()
            return loaded

    def check(self) -> ConformanceReport | None:
        """Run the conformance suite against the loaded version now (if one is)."""
        with self._lock:
            if self.name is None:
                self.say("no version is loaded yet: fix the build first")
                return None
            conformance, self.conformance = self.conformance, True
            try:
                return self._check()
            finally:
                self.conformance = conformance

    def handle(self) -> PluginHandle | None:
        """The handle of the loaded version (``None`` before the first good build)."""
        if self.name is None:
            return None
        return self.manager.get(self.name)

    def close(self) -> None:
        """Unload the plugin and remove the session's hidden files."""
        with self._lock:
            self.manager.close()
            for path in self._staged:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            self._staged.clear()


def _mtimes(paths: Iterable[Path]) -> dict[Path, int]:
    found = {}
    for path in paths:
        try:
            found[path] = path.stat().st_mtime_ns
        except OSError:
            continue
    return found


def watch_sources(
    session: DevSession,
    stop: threading.Event,
    *,
    ready: threading.Event | None = None,
    debounce_ms: int = 300,
    poll: bool = False,
) -> None:
    """Rebuild ``session`` on every batch of source changes until ``stop`` is set.

    ``ready`` is set once the watcher runs; a change made since the last build started
    (while the watcher was starting) is found by the sources' modification times.
    """
    source_filter = session.filter
    known = dict(session.source_times)  # as the last build saw them
    started = False
    for changes in watchfiles.watch(
        session.directory,
        watch_filter=source_filter,
        stop_event=stop,
        debounce=debounce_ms,
        step=50,
        rust_timeout=500,
        yield_on_timeout=True,
        raise_interrupt=False,
        force_polling=poll or None,
    ):
        if stop.is_set():
            break
        paths = {Path(p) for _, p in changes}
        if not started:  # the watcher runs now: catch up with what changed meanwhile
            started = True
            now = _mtimes(source_filter.sources())
            paths |= {p for p in now.keys() | known.keys() if now.get(p) != known.get(p)}
            if ready is not None:
                ready.set()
        # a file that is gone and was never a source is a temporary one (an editor's,
        # a compiler's): it alone does not make a rebuild
        relevant = {p for p in paths if p.exists() or p in known}
        if relevant:
            session.rebuild(str(p) for p in relevant)
            known = dict(session.source_times)
