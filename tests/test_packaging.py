"""Packaging hygiene: the license text in every wheel, full metadata, a changelog.

The framework's wheel and one contrib package's wheel are built offline (``pip wheel
--no-deps --no-build-isolation``, with this environment's setuptools) from copies of
their sources in ``tmp_path``, so the build leaves nothing in the working tree.
"""

from __future__ import annotations

import email.parser
import email.policy
import re
import shutil
import tomllib
import zipfile
from email.message import Message
from pathlib import Path

import pytest
from wheels import IGNORED, build_wheel, framework_wheel

ROOT = Path(__file__).resolve().parents[1]
LICENSE = ROOT / "LICENSE"
CONTRIB = sorted(p.parent for p in (ROOT / "contrib").glob("*/pyproject.toml"))
URL_LABELS = {"Documentation", "Source", "Changelog", "Issues"}


def dist_info(wheel: Path) -> tuple[Message, dict[str, bytes]]:
    """The wheel's METADATA and the files of its ``.dist-info/licenses``."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata,) = [n for n in names if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
        licenses = {
            n.partition("/licenses/")[2]: archive.read(n)
            for n in names
            if re.fullmatch(r"[^/]+\.dist-info/licenses/.+", n)
        }
        parsed = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(
            archive.read(metadata)
        )
    return parsed, licenses


def assert_common_metadata(metadata: Message, licenses: dict[str, bytes]) -> None:
    assert licenses == {"LICENSE": LICENSE.read_bytes()}
    assert metadata["License-Expression"] == "BSD-3-Clause"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert metadata["Requires-Python"] == ">=3.11"
    classifiers = metadata.get_all("Classifier") or []
    for wanted in (
        "Intended Audience :: Developers",
        "Operating System :: POSIX :: Linux",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Typing :: Typed",
    ):
        assert wanted in classifiers
    assert any(c.startswith("Development Status :: ") for c in classifiers)
    assert any(c.startswith("Topic :: ") for c in classifiers)
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL") or [])
    assert set(urls) == URL_LABELS
    assert all(u.startswith("https://github.com/weaviate/weaviate-ext") for u in urls.values())
    assert urls["Changelog"].endswith("/CHANGELOG.md")


def test_license_is_bsd_3_clause_of_the_project() -> None:
    text = LICENSE.read_text()
    assert text.startswith("BSD 3-Clause License\n")
    assert re.search(r"^Copyright \(c\) \d{4}, weaviate-ext developers$", text, re.M)
    assert "Neither the name of the copyright holder" in text


def test_framework_wheel_ships_the_license_and_full_metadata(tmp_path: Path) -> None:
    wheel = framework_wheel(tmp_path)
    metadata, licenses = dist_info(wheel)
    assert metadata["Name"] == "weaviate-ext"
    assert_common_metadata(metadata, licenses)
    assert "Framework :: Pytest" in (metadata.get_all("Classifier") or [])  # pytest11 plugin
    docs = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL") or [])
    assert docs["Documentation"].endswith("/docs")


def test_contrib_wheel_ships_the_license_and_full_metadata(tmp_path: Path) -> None:
    source = tmp_path / "bm25-reranker"
    shutil.copytree(ROOT / "contrib" / "bm25-reranker", source, ignore=IGNORED)
    wheel = build_wheel(source, tmp_path / "wheels")
    metadata, licenses = dist_info(wheel)
    assert metadata["Name"] == "weaviate-ext-bm25-reranker"
    assert_common_metadata(metadata, licenses)


@pytest.mark.parametrize("package", CONTRIB, ids=lambda p: p.name)
def test_every_contrib_package_declares_the_license_file(package: Path) -> None:
    """What the contrib wheel test shows for one package holds for each: the same
    LICENSE beside its pyproject.toml, named in ``license-files``, and the metadata."""
    assert (package / "LICENSE").read_bytes() == LICENSE.read_bytes()
    project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    assert project["license"] == "BSD-3-Clause"
    assert project["license-files"] == ["LICENSE"]
    assert project["requires-python"] == ">=3.11"
    assert set(project["urls"]) == URL_LABELS
    assert f"/contrib/{package.name}" in project["urls"]["Source"]
    assert "Typing :: Typed" in project["classifiers"]
    assert not [c for c in project["classifiers"] if c.startswith("License ::")]


def test_changelog_follows_keep_a_changelog() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog\n")
    assert "https://keepachangelog.com/en/1.1.0/" in text
    assert "## [Unreleased]" in text
    sections = set(re.findall(r"^### (\w+)$", text, re.M))
    assert sections <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}
    assert re.search(r"^\[Unreleased\]: https://github\.com/weaviate/weaviate-ext/", text, re.M)
