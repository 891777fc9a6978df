"""Start-up cost of the command line, and whether it grows with installed plugins.

Run: ``python benchmarks/startup.py [--plugins N] [--runs R]``

Builds a temporary virtualenv (``--system-site-packages``, so the framework and its
dependencies are importable; the plugins installed in the system site-packages, such as
the editable contrib packages, are seen in every measurement alike) and measures the CPU
time (user + system, from ``resource.getrusage(RUSAGE_CHILDREN)`` deltas) of:

* ``help_ms`` -- ``weaviate-ext --help``;
* ``list_ms_0`` -- ``weaviate-ext list`` before the benchmark's plugins are installed;
* ``list_ms_50`` -- ``weaviate-ext list`` with N (default 50) tiny plugin packages
  installed: real installed distributions (a package and its ``.dist-info`` with
  ``METADATA``, ``RECORD`` and ``entry_points.txt`` in group ``weaviate_ext``, laid out
  the way pip installs a wheel), each shipping its ``plugin.yaml`` as package data;
* ``get_one_ms_50`` -- ``weaviate-ext inspect`` of one of them (imports and loads it);
* ``import_ms`` -- ``python -c "import weaviate_ext"``; ``python_ms`` -- ``python -c
  pass``, for reference.

The console script is the venv's own ``weaviate-ext`` (what pip writes for the entry
point), run by the venv's python. Each figure is the median of ``runs`` runs. Prints a
table, then one JSON line.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import resource
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Sequence
from pathlib import Path

CONSOLE_SCRIPT = """\
#!{python}
import sys
from weaviate_ext.cli import main
if __name__ == "__main__":
    sys.exit(main())
"""

PACKAGE_INIT = """\
from importlib.resources import files

from weaviate_ext import hookimpl


@hookimpl
def weaviate_ext_discover():
    return [files(__name__) / "plugin.yaml"]
"""

IMPL = """\
from weaviate_ext import hookimpl


class Plugin:
    @hookimpl
    def transform(self, data):
        return data
"""

MANIFEST = """\
apiVersion: weaviate.io/v1
kind: Plugin
metadata:
  name: {name}
  version: 1.{index}.0
  description: Startup benchmark plugin number {index}.
spec:
  type: transformer
  runtime: python
  entrypoint: {module}.impl:Plugin
"""


def _record_line(site: Path, path: Path) -> str:
    data = path.read_bytes()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path.relative_to(site).as_posix()},sha256={digest},{len(data)}"


def install_plugin(site: Path, index: int) -> str:
    """Install plugin ``bench-pNN`` (distribution ``wxbench-pNN``) into ``site``, as pip
    installs a wheel; returns the plugin's name."""
    name = f"bench-p{index:02d}"
    module = f"wxbench_p{index:02d}"
    package = site / module
    package.mkdir()
    (package / "__init__.py").write_text(PACKAGE_INIT)
    (package / "impl.py").write_text(IMPL)
    (package / "plugin.yaml").write_text(MANIFEST.format(name=name, index=index, module=module))
    version = f"1.{index}.0"
    info = site / f"{module}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: wxbench-p{index:02d}\nVersion: {version}\n"
        "Requires-Dist: weaviate-ext\n"
    )
    (info / "entry_points.txt").write_text(f"[weaviate_ext]\n{name} = {module}\n")
    (info / "INSTALLER").write_text("pip\n")
    (info / "WHEEL").write_text("Wheel-Version: 1.0\nGenerator: startup-benchmark\n")
    lines = [_record_line(site, p) for p in sorted(package.iterdir())]
    lines += [_record_line(site, p) for p in sorted(info.iterdir())]
    lines.append(f"{info.name}/RECORD,,")
    (info / "RECORD").write_text("\n".join(lines) + "\n")
    return name


def make_venv(root: Path) -> tuple[Path, Path, Path]:
    """A venv under ``root`` seeing the system site-packages: (python, console script,
    its site-packages)."""
    venv = root / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
    )
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    script = venv / "bin" / "weaviate-ext"
    script.write_text(CONSOLE_SCRIPT.format(python=python))
    script.chmod(0o755)
    return python, script, Path(purelib)


def cpu_ms(command: Sequence[str], runs: int) -> float:
    """Median CPU time (user + system) of ``command`` in milliseconds, over ``runs`` runs
    after one warm-up run (which fills the bytecode caches)."""
    subprocess.run(command, capture_output=True, check=True)
    times = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(command, capture_output=True, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        times.append(used * 1000)
    return round(statistics.median(times), 1)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugins", type=int, default=50, help="plugin packages to install")
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (median)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="wx-startup-") as tmp:
        python, script, site = make_venv(Path(tmp))
        cli = [str(python), str(script)]
        figures: dict[str, float | int] = {}
        figures["python_ms"] = cpu_ms([str(python), "-c", "pass"], args.runs)
        figures["import_ms"] = cpu_ms([str(python), "-c", "import weaviate_ext"], args.runs)
        figures["help_ms"] = cpu_ms([*cli, "--help"], args.runs)
        figures["list_ms_0"] = cpu_ms([*cli, "list"], args.runs)
        names = [install_plugin(site, i) for i in range(args.plugins)]
        listed = subprocess.run([*cli, "list"], capture_output=True, text=True, check=True)
        missing = [n for n in names if n not in listed.stdout]
        if missing:
            raise SystemExit(f"not listed after install: {', '.join(missing)}")
        figures[f"list_ms_{args.plugins}"] = cpu_ms([*cli, "list"], args.runs)
        one = names[len(names) // 2]
        figures[f"get_one_ms_{args.plugins}"] = cpu_ms([*cli, "inspect", one], args.runs)
        figures["plugins"] = args.plugins
        figures["runs"] = args.runs

    ratio = figures[f"list_ms_{args.plugins}"] / max(figures["list_ms_0"], 1e-9)
    figures["list_ratio"] = round(ratio, 2)
    print(f"{'figure':<16} {'CPU ms':>10}")
    for key, value in figures.items():
        if key.endswith("_ms") or "_ms_" in key:
            print(f"{key:<16} {value:>10.1f}")
    print(f"{'list_ratio':<16} {ratio:>10.2f}   (goal <= 1.2)")
    print(f"python {sysconfig.get_python_version()}, {args.plugins} plugins, median of {args.runs}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
