"""The image's build context lets in everything the Dockerfile copies: .dockerignore starts
from "nothing" (``**``) and lets folders back in one by one, so a new package copied by the
Dockerfile but not let in fails the build, and only `make docker-check` would notice."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _let_in() -> set[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return {line[1:].rstrip("/") for line in lines if line.startswith("!")}


def _copied() -> list[str]:
    sources = []
    for line in (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8").splitlines():
        words = line.split()
        if not words or words[0] != "COPY" or any(w.startswith("--from") for w in words):
            continue
        sources += [w for w in words[1:-1] if not w.startswith("--")]
    return sources


def test_every_path_the_dockerfile_copies_is_in_the_build_context() -> None:
    let_in = _let_in()
    copied = _copied()
    assert copied, "no COPY found: the parser no longer reads the Dockerfile"
    missing = [
        source
        for source in copied
        if not any(source == p or source.startswith(p + "/") for p in let_in)
    ]
    assert missing == []


def test_every_package_the_project_installs_is_copied_into_the_image() -> None:
    # A new top-level package (screening/ was one) left out of the image installs nothing
    # and fails only when a container first imports it.
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    copied = set(_copied())

    assert packages, "no packages found in pyproject.toml"
    assert [p for p in packages if p not in copied] == []
