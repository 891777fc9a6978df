"""A gRPC vectorizer that misbehaves on request, for the supervisor's fault tests.

``--mode`` chooses what happens at start:

* ``normal``: serve;
* ``no-handshake``: never serve nor print the handshake line (sleep);
* ``ignore-sigterm``: serve, ignoring SIGTERM;
* ``crash-loop``: serve, but once a call crashed it, every later start exits at once;
* ``grandchildren``: start two ``sleep`` processes first, one in the plugin's process
  group and one in a session of its own (out of the group), then serve;
* ``default-sigterm``: serve from another thread, so that SIGTERM keeps its default
  action (the process is killed by it, rather than the SDK stopping cleanly);
* ``alloc-at-start``: allocate 1.5 GiB before serving (under a smaller memory limit the
  ``MemoryError`` is not caught: the process exits with code 1 and its traceback).

The text of a ``vectorize_text`` call chooses what happens in the call: ``crash``
(the process exits with code 3), ``hang`` (sleeps for an hour), ``alloc`` (allocates
1.5 GiB), ``secret`` (a vector of the secret's length, to show Init delivered it),
``pids`` (the plugin's pid and its grandchildren's, then zeros), ``segv`` (reads
address 0: killed by SIGSEGV), ``abort`` (``abort()``: killed by SIGABRT),
``alloc-die`` (allocates 1.5 GiB; a ``MemoryError`` ends the process the way an
uncaught one ends a Python program: its traceback on stderr, exit code 1); anything
else gets a vector of 8 values.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

# This script calls serve() itself and may exit before it (crash-loop mode): switch the
# SDK's serving of __main__ plugin classes at exit off (see weaviate_ext.sdk.autoserve).
os.environ["WEAVIATE_EXT_SDK_AUTOSERVE"] = "0"

from weaviate_ext.sdk import VectorizerPlugin, serve

MARKER = Path(os.environ.get("HOME", "/nonexistent")) / "crashed-once"


class Faulty(VectorizerPlugin):
    plugin_name = "faulty"

    def __init__(self, mode: str, children: list[int] | None = None) -> None:
        self.mode = mode
        self.children = children or []
        self.config: Mapping[str, Any] = {}

    def setup(self, config: Mapping[str, Any]) -> None:
        self.config = config

    def vectorize_text(self, text: str) -> Any:
        if text == "crash":
            if self.mode == "crash-loop":
                MARKER.touch()
            os._exit(3)
        if text == "hang":
            time.sleep(3600)
        if text == "alloc":
            block = bytearray(1536 * 1024 * 1024)
            return np.full(8, len(block), dtype=np.float32)
        if text == "alloc-die":
            try:
                block = bytearray(1536 * 1024 * 1024)
            except MemoryError:
                traceback.print_exc()
                sys.stderr.flush()
                os._exit(1)
            return np.full(8, len(block), dtype=np.float32)
        if text == "segv":
            ctypes.string_at(0)
        if text == "abort":
            os.abort()
        if text == "pids":
            pids = [os.getpid(), *self.children]
            return np.array(pids + [0] * (8 - len(pids)), dtype=np.float32)
        if text == "secret":
            return np.full(8, len(str(self.config.get("apiKey", ""))), dtype=np.float32)
        return np.arange(8, dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="normal")
    mode = parser.parse_known_args()[0].mode
    if mode == "no-handshake":
        time.sleep(3600)
    if mode == "ignore-sigterm":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if mode == "crash-loop" and MARKER.exists():
        raise SystemExit("crashed before: refusing to start")
    if mode == "alloc-at-start":
        hoard = bytearray(1536 * 1024 * 1024)
        del hoard
    children: list[int] = []
    if mode == "grandchildren":
        for own_session in (False, True):
            child = subprocess.Popen(["sleep", "600"], start_new_session=own_session)
            children.append(child.pid)
    if mode == "default-sigterm":
        server = threading.Thread(target=serve, args=(Faulty(mode, children),))
        server.start()
        server.join()
        return
    serve(Faulty(mode, children))


if __name__ == "__main__":
    main()
