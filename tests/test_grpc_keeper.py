"""The keeper (``weaviate_ext/grpc/keeper.py``) on its own, around shell commands: it
reports the command's pid first, exits the way the command exits, and kills everything
the command started when the command exits or its stdin (the host) goes away."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
from grpc_helpers import alive, eventually, wait_gone

from weaviate_ext.grpc.keeper import PID_LINE_PREFIX, Options, keeper_argv


def keeper(command: list[str], **kwargs: object) -> subprocess.Popen[str]:
    """The keeper around ``command``, started by this process (its "host")."""
    return subprocess.Popen(
        keeper_argv(sys.executable, os.getpid(), None, None, command),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **kwargs,  # type: ignore[call-overload]
    )


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if process.stdin is not None:
            process.stdin.close()  # the keeper kills its tree
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def read_pids(process: subprocess.Popen[str], count: int) -> list[int]:
    """The plugin pid line, then ``count`` - 1 pids the command prints."""
    assert process.stdout is not None
    first = process.stdout.readline()
    assert first.startswith(PID_LINE_PREFIX), first
    pids = [int(first.removeprefix(PID_LINE_PREFIX))]
    pids += [int(process.stdout.readline()) for _ in range(count - 1)]
    return pids


TREE = "sleep 300 & echo $!; setsid sleep 300 & echo $!; echo $$; "


@pytest.mark.parametrize(("script", "code"), [("exit 7", 7), ("kill -9 $$", -9)])
def test_exits_the_way_the_command_exits(
    started: list[subprocess.Popen[str]], script: str, code: int
) -> None:
    process = keeper(["/bin/sh", "-c", script])
    started.append(process)
    assert process.wait(20) == code


def test_kills_what_the_command_left_when_it_exits(started: list[subprocess.Popen[str]]) -> None:
    process = keeper(["/bin/sh", "-c", TREE + "read line; exit 3"])
    started.append(process)
    plugin, in_group, own_session, shell = read_pids(process, 4)
    assert plugin == shell
    assert eventually(lambda: os.getsid(own_session) == own_session)  # setsid ran
    assert os.getsid(in_group) == process.pid
    assert process.stdin is not None
    process.stdin.write("go\n")
    process.stdin.flush()
    assert process.wait(20) == 3
    for pid in (plugin, in_group, own_session):
        assert wait_gone(pid, 10), f"{pid} outlived the command"


def test_kills_the_whole_tree_when_its_stdin_closes(started: list[subprocess.Popen[str]]) -> None:
    process = keeper(["/bin/sh", "-c", TREE + "trap '' TERM; while :; do sleep 1; done"])
    started.append(process)
    pids = read_pids(process, 4)
    assert all(alive(pid) for pid in pids)
    assert eventually(lambda: os.getsid(pids[2]) == pids[2])  # setsid ran
    assert process.stdin is not None
    process.stdin.close()  # what the host's end looks like
    process.wait(20)
    for pid in pids:
        assert wait_gone(pid, 10), f"{pid} outlived the host"


def test_passes_sigterm_on_and_reports_a_command_it_cannot_run(
    started: list[subprocess.Popen[str]],
) -> None:
    process = keeper(["/bin/sh", "-c", "echo ready; sleep 300 & wait"])
    started.append(process)
    read_pids(process, 1)
    assert process.stdout is not None and process.stdout.readline() == "ready\n"
    os.kill(process.pid, signal.SIGTERM)  # the keeper alone, not its group
    assert process.wait(20) == -signal.SIGTERM
    missing = keeper(["/nonexistent/plugin-server"])
    started.append(missing)
    assert missing.stderr is not None
    assert missing.wait(20) == 127
    err = missing.stderr.read()
    assert "weaviate-ext keeper: cannot start '/nonexistent/plugin-server': No such file" in err
    assert "Traceback" not in err


def test_options() -> None:
    options = Options(["--host-pid", "12", "--memory", "1024", "--cpus", "0,2", "--", "a", "-b"])
    assert (options.host_pid, options.memory, options.cpus) == (12, 1024, {0, 2})
    assert options.command == ["a", "-b"]
    for bad in (
        [],
        [
            "--",
        ],
        ["--what", "1", "--", "a"],
        ["--host-pid", "--", "a"],
    ):
        with pytest.raises(ValueError):
            Options(bad)
