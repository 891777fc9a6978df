"""Hot reload: atomic swap, no lost call under load, old version kept on failure."""

from __future__ import annotations

import threading
import time

import pytest
from plugin_factory import vectorizer_source, write_plugin

from weaviate_ext import DependencyError, ManifestError, PluginLoadError

SLOW_VERSIONED = """
    import threading
    import time
    from weaviate_ext import hookimpl

    VERSION = {version}
    EVENTS = []

    class Plugin:
        @hookimpl
        def vectorize_text(self, text):
            if text == "slow":
                EVENTS.append(("slow-start", VERSION))
                time.sleep(0.3)
                EVENTS.append(("slow-end", VERSION))
            else:
                time.sleep(0.0005)
            return [float(VERSION), 0.0]

        @hookimpl
        def plugin_close(self):
            EVENTS.append(("closed", VERSION))
"""


def _write(tmp_path, version: int, directory: str):
    return write_plugin(
        tmp_path,
        "vec",
        "vectorizer",
        SLOW_VERSIONED.format(version=version),
        version=f"{version}.0.0",
        capabilities={"dimensions": 2},
        directory=directory,
    )


def test_reload_under_load_from_four_threads_loses_no_call(manager, tmp_path):
    v1 = _write(tmp_path, 1, "v1")
    v2 = _write(tmp_path, 2, "v2")
    handle = manager.load(v1)
    stop = threading.Event()
    results: list[list[float]] = [[] for _ in range(4)]
    errors: list[BaseException] = []
    sent = [0] * 4

    def worker(i: int) -> None:
        while not stop.is_set():
            sent[i] += 1
            try:
                results[i].append(float(handle.vectorize_text(f"t{i}")[0]))
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    for path in (v2, v1, v2):  # several swaps while the load runs
        manager.reload("vec", path)
        time.sleep(0.05)
    time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join()

    assert errors == []
    assert sum(len(r) for r in results) == sum(sent), "every call sent got an answer"
    versions = [v for r in results for v in r]
    assert set(versions) == {1.0, 2.0}
    for r in results:  # each thread saw the versions in swap order, never going back
        assert r[-1] == 2.0
    assert manager.manifest("vec").version == "2.0.0"
    assert manager.stats()["vec"].in_flight == 0


def test_calls_in_flight_finish_on_the_old_version_which_closes_after(manager, tmp_path):
    handle = manager.load(_write(tmp_path, 1, "v1"))
    events = __import__(type(manager.registry.get_plugin("vec")).__module__).EVENTS
    answer: list[float] = []
    slow = threading.Thread(target=lambda: answer.append(handle.vectorize_text("slow")[0]))
    slow.start()
    while ("slow-start", 1) not in events:
        time.sleep(0.005)

    manager.reload("vec", _write(tmp_path, 2, "v2"))

    assert handle.vectorize_text("fast")[0] == 2.0, "new calls go to the new version"
    assert ("closed", 1) not in events, "the old version stays open for the call in flight"
    slow.join()
    assert answer == [1.0]
    assert events.index(("slow-end", 1)) < events.index(("closed", 1))


@pytest.mark.parametrize(
    ("breakage", "error", "message"),
    [
        ("manifest", ManifestError, "spec.type"),
        ("import", PluginLoadError, "SyntaxError"),
        ("dims", PluginLoadError, "3 dimensions, the manifest declares 2"),
        ("name", PluginLoadError, "defines 'other', not 'vec'"),
    ],
)
def test_failed_reload_keeps_the_old_version_serving(manager, tmp_path, breakage, error, message):
    handle = manager.load(_write(tmp_path, 1, "v1"))
    bad = _write(tmp_path, 2, "bad")
    if breakage == "manifest":
        bad.write_text(bad.read_text().replace("type: vectorizer", "type: vectoriser"))
    elif breakage == "import":
        (bad.parent / "src" / "plugin.py").write_text("def broken(:\n")
    elif breakage == "dims":
        bad = write_plugin(
            tmp_path,
            "vec",
            "vectorizer",
            vectorizer_source(3),
            capabilities={"dimensions": 2},
            directory="dims",
        )
    else:
        bad = write_plugin(tmp_path, "other", "vectorizer", vectorizer_source(2), directory="other")

    with pytest.raises(error, match=message):
        manager.reload("vec", bad)

    assert handle.vectorize_text("x")[0] == 1.0
    assert manager.manifest("vec").version == "1.0.0"
    assert manager.registry.get_plugin("vec") is handle._slot.live.obj


def test_reload_reads_the_edited_source(manager, tmp_path):
    path = _write(tmp_path, 1, "v1")
    handle = manager.load(path)
    source = path.parent / "src" / "plugin.py"
    source.write_text(source.read_text().replace("VERSION = 1", "VERSION = 7"))
    manager.reload("vec")
    assert handle.vectorize_text("x")[0] == 7.0


def test_reload_cannot_change_type(manager, tmp_path):
    manager.load(_write(tmp_path, 1, "v1"))
    other = write_plugin(
        tmp_path,
        "vec",
        "transformer",
        "from weaviate_ext import hookimpl\n"
        "class Plugin:\n    @hookimpl\n    def transform(self, data):\n"
        "        return data\n",
        directory="t",
    )
    with pytest.raises(PluginLoadError, match="cannot change its type"):
        manager.reload("vec", other)


def test_reload_outside_a_dependents_range_is_refused(manager, tmp_path):
    manager.load(_write(tmp_path, 1, "v1"))
    manager.load(
        write_plugin(
            tmp_path,
            "user",
            "vectorizer",
            vectorizer_source(),
            dependencies=[{"name": "vec", "version": "^1.0.0"}],
        )
    )
    with pytest.raises(DependencyError, match="2.0.0 is outside 'user''s range"):
        manager.reload("vec", _write(tmp_path, 2, "v2"))
    assert manager.manifest("vec").version == "1.0.0"


def test_reload_keeps_the_host_config(manager, tmp_path):
    source = """
        from weaviate_ext import hookimpl
        class Plugin:
            @hookimpl
            def plugin_setup(self, config):
                self.suffix = config["suffix"]
            @hookimpl
            def transform(self, data):
                return data + self.suffix
    """
    path = write_plugin(
        tmp_path,
        "t",
        "transformer",
        source,
        config={"suffix": {"type": "string", "required": True}},
    )
    handle = manager.load(path, config={"suffix": "!"})
    manager.reload("t")
    assert handle.transform("hi") == "hi!"
    manager.reload("t", config={"suffix": "?"})
    assert handle.transform("hi") == "hi?"


def test_listing_while_another_thread_loads_and_unloads(manager, tmp_path):
    paths = [write_plugin(tmp_path, f"p{i}", "vectorizer", vectorizer_source()) for i in range(5)]
    errors: list[BaseException] = []
    done = threading.Event()

    def churn() -> None:
        try:
            for _ in range(20):
                for path in paths:
                    manager.load(path)
                for i in range(len(paths)):
                    manager.unload(f"p{i}")
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=churn)
    thread.start()
    while not done.is_set():
        manager.stats()
        manager.plugins()
        manager.names()
    thread.join()
    assert errors == []
    assert manager.names() == ()


TRANSFORMER = """
    from weaviate_ext import hookimpl
    WORD = "old"
    class Plugin:
        @hookimpl
        def transform(self, data):
            return WORD + ":" + data
"""


@pytest.mark.parametrize("layout", ["module", "package"])
def test_reload_runs_an_edit_that_keeps_size_and_mtime(manager, tmp_path, layout, monkeypatch):
    """Bytecode in __pycache__ is trusted when the source's size and mtime (seconds)
    match; an edit inside the same second that keeps the size must still be seen, in
    the plugin's module and in a package's submodules (imported relatively)."""
    import os
    import sys

    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # __pycache__ as by default
    if layout == "module":
        manifest = write_plugin(tmp_path, "t", "transformer", TRANSFORMER)
        edited = manifest.parent / "src" / "plugin.py"
    else:
        manifest = write_plugin(tmp_path, "t", "transformer", "", entrypoint="pkg.main:Plugin")
        package = manifest.parent / "src" / "pkg"
        package.mkdir()
        (package / "__init__.py").write_text("")
        (package / "main.py").write_text(
            "from weaviate_ext import hookimpl\n"
            "from .words import WORD\n"
            "class Plugin:\n"
            "    @hookimpl\n"
            "    def transform(self, data):\n"
            "        return WORD + ':' + data\n"
        )
        edited = package / "words.py"
        edited.write_text('WORD = "old"\n')
    handle = manager.load(manifest)
    assert handle.transform("x") == "old:x"
    stat = edited.stat()
    edited.write_text(edited.read_text().replace('"old"', '"new"'))
    os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    manager.reload("t")
    assert handle.transform("x") == "new:x"
