"""Start-up that does not grow with installed plugins: what gets imported, not how long.

``import weaviate_ext`` and ``weaviate-ext --help`` import no heavy dependency, and
``weaviate-ext list`` reads installed plugins' manifests from their package data without
importing their code (``--check`` imports them). Each check runs in a fresh interpreter
(a subprocess) and looks at ``sys.modules`` or a file a package writes when imported;
timings are printed by ``benchmarks/startup.py``, never asserted here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import importlib_metadata
import pytest

from weaviate_ext import PluginManager

HEAVY = ("numpy", "jsonschema", "grpc", "wasmtime", "fastapi", "cffi")

PACKAGE_INIT = """
import os
from pathlib import Path
from weaviate_ext import hookimpl

Path(os.environ["WX_IMPORTED_DIR"], __name__).write_text("imported")
{extra}

@hookimpl
def weaviate_ext_discover():
    return [Path(__file__).parent / "plugin.yaml"]
"""

MANIFEST = """\
apiVersion: weaviate.io/v1
kind: Plugin
metadata:
  name: {name}
  version: {version}
spec:
  type: transformer
  runtime: python
  entrypoint: {module}.impl:Plugin
"""

IMPL = """
from weaviate_ext import hookimpl

class Plugin:
    @hookimpl
    def transform(self, data):
        return data
"""


def _record(site: Path, path: Path) -> str:
    data = path.read_bytes()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path.relative_to(site).as_posix()},sha256={digest},{len(data)}"


def install(
    site: Path, name: str, *, version: str = "1.2.3", extra: str = "", record: bool = True
) -> str:
    """Install distribution ``wxs-<name>`` (module ``wxs_<name>``) into ``site`` as pip
    installs a wheel: package data, ``.dist-info`` with ``entry_points.txt`` and (unless
    ``record`` is false, as in an editable install) a ``RECORD`` listing the files."""
    module = "wxs_" + name.replace("-", "_")
    package = site / module
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(PACKAGE_INIT.format(extra=extra)))
    (package / "impl.py").write_text(textwrap.dedent(IMPL))
    (package / "plugin.yaml").write_text(MANIFEST.format(name=name, version=version, module=module))
    info = site / f"{module}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: wxs-{name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[weaviate_ext]\n{name} = {module}\n")
    if record:
        files = sorted(package.iterdir()) + sorted(info.iterdir())
        lines = [_record(site, p) for p in files] + [f"{info.name}/RECORD,,"]
        (info / "RECORD").write_text("\n".join(lines) + "\n")
    return module


@pytest.fixture
def site(tmp_path: Path) -> Path:
    path = tmp_path / "site"
    path.mkdir()
    return path


@pytest.fixture
def imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The directory where a test package writes a file named after itself on import."""
    path = tmp_path / "imported"
    path.mkdir()
    monkeypatch.setenv("WX_IMPORTED_DIR", str(path))
    return path


def run_python(code: str, site: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter, with ``site`` on its path and the plugins
    installed in the test environment switched off (so only the test's packages load)."""
    env = dict(os.environ)
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    others = [ep.name for ep in importlib_metadata.entry_points(group="weaviate_ext")]
    env["WEAVIATE_EXT_DISABLE"] = ",".join(others)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )


def loaded_modules(code: str) -> set[str]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    result = run_python(probe)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def cli(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    code = f"import sys; sys.argv = ['weaviate-ext', *{list(args)!r}]\n"
    code += "from weaviate_ext.cli import main\nmain()"
    return run_python(code, site)


def test_import_weaviate_ext_imports_no_heavy_dependency():
    modules = loaded_modules("import weaviate_ext")
    assert not [m for m in HEAVY if m in modules]


def test_public_names_are_imported_on_first_use():
    modules = loaded_modules("from weaviate_ext import hookimpl, WeaviateExtError, Grants")
    assert not [m for m in HEAVY if m in modules]
    assert "PluginManager" in dir(__import__("weaviate_ext"))
    assert PluginManager.__module__ == "weaviate_ext.manager"


def test_help_imports_no_heavy_dependency():
    code = (
        "import sys\nsys.argv = ['weaviate-ext', '--help']\n"
        "from weaviate_ext.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass"
    )
    modules = loaded_modules(code)
    assert not [m for m in HEAVY if m in modules]
    assert "weaviate_ext.manager" not in modules


@pytest.mark.parametrize("record", [True, False], ids=["wheel", "editable"])
def test_list_reads_the_manifest_without_importing_the_package(site, imported, record):
    module = install(site, "quiet", record=record)
    result = cli(site, "list", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    row = rows["quiet"]
    assert row["status"] == "installed"
    assert (row["version"], row["type"], row["runtime"]) == ("1.2.3", "transformer", "python")
    assert "wxs-quiet" in row["source"]
    assert not (imported / module).exists(), "list must not import the package"


def test_manager_rows_do_not_import_the_package(site, imported, monkeypatch):
    module = install(site, "inproc", version="2.0.0")
    monkeypatch.syspath_prepend(str(site))
    try:
        with PluginManager() as manager:
            row = next(r for r in manager.plugins() if r.name == "inproc")
            assert (row.status, row.version, row.type) == ("installed", "2.0.0", "transformer")
            assert module not in sys.modules
            assert manager.get_transformer("inproc").transform("x") == "x"  # by name: loads
            assert module in sys.modules
    finally:
        for key in [k for k in sys.modules if k.startswith("wxs_")]:
            del sys.modules[key]


def test_an_invalid_shipped_manifest_is_listed_broken_without_import(site, imported):
    module = install(site, "badyaml")
    manifest = site / module / "plugin.yaml"
    manifest.write_text(manifest.read_text().replace("type: transformer", "type: nonsense"))
    result = cli(site, "list", "--json")
    assert result.returncode == 0, result.stderr
    row = {r["name"]: r for r in json.loads(result.stdout)}["badyaml"]
    assert row["status"] == "broken" and "nonsense" in row["reason"]
    assert not (imported / module).exists()


def test_list_check_imports_each_and_reports_the_broken_one(site, imported):
    good = install(site, "good")
    broken = install(site, "broken", extra="import not_a_module_anywhere")
    result = cli(site, "list", "--check", "--json")
    assert result.returncode == 1, result.stderr  # a broken plugin fails the check
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["good"]["status"] == "loaded"
    assert rows["broken"]["status"] == "broken"
    assert "not_a_module_anywhere" in rows["broken"]["reason"]
    assert (imported / good).exists() and (imported / broken).exists()

    table = cli(site, "list", "--check")
    assert table.returncode == 1
    assert "broken" in table.stdout and "not_a_module_anywhere" in table.stdout


def test_list_check_passes_when_nothing_is_broken(site, imported):
    install(site, "fine")
    result = cli(site, "list", "--check")
    assert result.returncode == 0, result.stderr
    assert "fine" in result.stdout and "loaded" in result.stdout
