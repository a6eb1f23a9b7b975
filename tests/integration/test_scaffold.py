"""``mash adapter new``: the package it writes installs, is listed, and passes its own tests
(the lookup, and the adapter contract on the real broker) as generated."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.broker

# Hyphenated, as the built-in "social-care": the package is mash_adapter_youth_justice.
AGENCY = "youth-justice"


@dataclass(frozen=True)
class Installed:
    package: Path
    python: Path


def mash(*args: str, python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "-m", "mash", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """The new package installed in a throwaway environment that sees this project's own
    packages (nothing is downloaded), as an agency developer's environment would."""
    root = tmp_path_factory.mktemp("scaffold")
    made = mash("adapter", "new", AGENCY, "--dir", str(root))
    assert made.returncode == 0, made.stderr
    package = root / "mash-adapter-youth-justice"
    venv = root / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
        timeout=120,
    )
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # --system-site-packages reaches the base interpreter's packages, not this venv's: a
    # .pth line adds this venv's too (with its own .pth files, so mash-hub's editable install
    # works there).
    ours = sysconfig.get_paths()["purelib"]
    Path(purelib, "mash-hub-parent.pth").write_text(
        f"import site; site.addsitedir({ours!r})\n", encoding="utf-8"
    )
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", package],
        check=True,
        capture_output=True,
        timeout=300,
    )
    yield Installed(package, python)


def test_a_new_adapter_passes_its_own_tests_as_generated(installed: Installed) -> None:
    run = subprocess.run(
        [installed.python, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=installed.package,
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
    )

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    summary = run.stdout.strip().splitlines()[-1]
    assert summary.startswith("13 passed"), summary  # the lookup's 4, the contract's 9
    assert "warning" not in summary, run.stdout[-3000:]
    assert "Warning" not in run.stdout + run.stderr, run.stdout[-3000:] + run.stderr[-2000:]


def test_a_new_adapter_is_listed_with_the_package_it_comes_from(installed: Installed) -> None:
    listing = mash("adapter", "list", python=str(installed.python))

    assert listing.returncode == 0, listing.stderr
    line = next(line for line in listing.stdout.splitlines() if line.startswith(AGENCY))
    assert "mash_adapter_youth_justice:YouthJusticeAgency" in line
    assert "mash-adapter-youth-justice 0.1.0" in line


def test_a_new_adapters_findings_schema_is_in_the_registry(installed: Installed) -> None:
    code = (
        "from schemas.registry import default_registry as r; "
        "print(r().current('uk.mash.YouthJusticeFindings').source)"
    )
    run = subprocess.run([installed.python, "-c", code], capture_output=True, text=True)

    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().endswith("uk.mash.YouthJusticeFindings.avsc")


@pytest.mark.parametrize(
    "name",
    ["Youth-Justice", "9lives", "youth__justice", "youth-_justice", "youth-", "hub", "police"],
)
def test_a_bad_name_is_refused_in_one_line(name: str, tmp_path: Path) -> None:
    made = mash("adapter", "new", name, "--dir", str(tmp_path))

    assert made.returncode == 2
    assert made.stderr.startswith("error: ") and made.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_name_the_installed_social_care_already_has_with_an_underscore_is_refused(
    tmp_path: Path,
) -> None:
    # One Python package (mash_adapter_social_care) for two agencies would be a mix-up.
    made = mash("adapter", "new", "social_care", "--dir", str(tmp_path))

    assert made.returncode == 2
    assert made.stderr == "error: an adapter named 'social-care' is already installed\n"


def test_a_hyphenated_name_is_one_agency_in_every_place_it_appears(installed: Installed) -> None:
    pyproject = (installed.package / "pyproject.toml").read_text(encoding="utf-8")
    agency = (installed.package / "mash_adapter_youth_justice" / "agency.py").read_text(
        encoding="utf-8"
    )

    assert 'youth-justice = "mash_adapter_youth_justice:YouthJusticeAgency"' in pyproject
    assert 'return "youth-justice"' in agency
    assert "MASH_YOUTH_JUSTICE_DATA" in agency


def test_an_existing_folder_is_not_overwritten(tmp_path: Path) -> None:
    existing = tmp_path / "mash-adapter-youth-justice"
    existing.mkdir()
    (existing / "mine.txt").write_text("keep me", encoding="utf-8")

    made = mash("adapter", "new", AGENCY, "--dir", str(tmp_path))

    assert made.returncode == 2
    assert "already exists" in made.stderr
    assert [p.name for p in existing.iterdir()] == ["mine.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mash-adapter-youth-justice"]
