"""A fresh install must not pick up an untested major release of the libraries the code leans on."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
PYPROJECT = Path(__file__).parents[1] / "pyproject.toml"


@pytest.mark.parametrize("name", ["gradio", "transformers", "coqui-tts"])
def test_major_versions_are_bounded_with_the_reason_beside(name):
    dependencies = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["dependencies"]
    requirement = next(Requirement(d) for d in dependencies if Requirement(d).name == name)
    current = Version(next(s.version for s in requirement.specifier if s.operator in (">=", "==")))
    next_major = Version(f"{current.major + 1}")
    assert not requirement.specifier.contains(next_major), f"{name} {requirement.specifier} admits {next_major}"
    lines = PYPROJECT.read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith(f'"{name}'))
    assert lines[at - 1].strip().startswith("#") and len(lines[at - 1].strip()) > 20  # the reason, in words
