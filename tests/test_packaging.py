"""Installed for real (not editable), as the image and a plain ``pip install .`` do.

Two installs into target folders, built from copies of the sources: the image's
(what the Dockerfile's build stage copies, pruned as it prunes) and the whole
project's. Each test runs the installed code with the target first on the path.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRUNE = ROOT / "scripts" / "prune_console_scripts.py"


def image_sources() -> list[str]:
    """What the Dockerfile's build stage copies from the build context into the install."""
    text = (ROOT / "Dockerfile").read_text()
    build = text[text.index(" AS build"):]
    build = build[:build.index("\nFROM ")]
    return re.findall(r"^COPY (?!--)(\S+) \./\S*$", build, re.M)


def project_sources() -> list[str]:
    """README, and every top-level package (a folder with __init__.py)."""
    return ["README.md"] + sorted(p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file())


def install(sources: list[str], work: Path, prune: bool = False) -> Path:
    """Copies pyproject.toml and ``sources`` into ``work``/src and pip-installs that folder
    (non-editable, no dependencies) into ``work``/target; returns the target."""
    src, target = work / "src", work / "target"
    src.mkdir()
    for name in ["pyproject.toml", *sources]:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, src / name)
    if prune:  # as the Dockerfile does before its install
        subprocess.run([sys.executable, str(PRUNE), str(src / "pyproject.toml")], check=True,
                       capture_output=True)
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                           "--no-build-isolation", "--disable-pip-version-check",
                           "--target", str(target), str(src)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return target


def run(target: Path, *command: str, cwd: Path) -> subprocess.CompletedProcess:
    """``command`` with only the installed copy importable (the target first on the path;
    -P keeps the working directory off it)."""
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("HIGHWAY_DATA_DIR", None)
    env.pop("HIGHWAY_MODEL_REPOSITORY", None)
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def console_scripts(target: Path) -> dict[str, str]:
    """The installed distribution's console scripts: {command: "module:function"}."""
    (entry_points,) = target.glob("highway_mnist-*.dist-info/entry_points.txt")
    parser = configparser.ConfigParser()
    parser.read(entry_points)
    return dict(parser["console_scripts"]) if parser.has_section("console_scripts") else {}


@pytest.fixture(scope="module")
def image_install(tmp_path_factory) -> Path:
    return install(image_sources(), tmp_path_factory.mktemp("image"), prune=True)


@pytest.fixture(scope="module")
def plain_install(tmp_path_factory) -> Path:
    return install(project_sources(), tmp_path_factory.mktemp("plain"))


def test_the_image_installs_only_commands_whose_code_it_holds(image_install, tmp_path):
    scripts = console_scripts(image_install)
    assert scripts, "the image installs no command at all"
    for command, target in scripts.items():
        package = target.split(".")[0].split(":")[0]
        assert (image_install / package / "__init__.py").is_file(), (
            f"{command} needs package {package!r}, which the image does not hold")
        assert (image_install / "bin" / command).is_file()
        done = run(image_install, str(image_install / "bin" / command), "--help", cwd=tmp_path)
        assert done.returncode == 0, f"{command} --help: {done.stderr[-1000:]}"
    assert sorted(p.name for p in (image_install / "bin").iterdir()) == sorted(scripts)


def test_a_checkout_keeps_every_command():
    text = (ROOT / "pyproject.toml").read_text()
    present = set(project_sources())
    sys.path.insert(0, str(PRUNE.parent))
    try:
        from prune_console_scripts import prune
    finally:
        sys.path.remove(str(PRUNE.parent))
    assert prune(text, present) == (text, [])
    pruned, dropped = prune(text, present - {"training", "export"})
    assert dropped == ["highway-train", "highway-export"]
    assert "highway-serve" in pruned and "highway-train" not in pruned


def test_plain_install_defaults_point_at_the_working_directory_not_site_packages(
        plain_install, tmp_path):
    probe = ("import json, server.settings as s, export.verify as v;"
             "print(json.dumps([s.__file__, str(s.Settings().model_repository.resolve()),"
             " str(v.FIXTURE_DIR.resolve()), v.resolve_data(None)[1]]))")
    done = run(plain_install, sys.executable, "-P", "-c", probe, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    module, repository, fixture, origin = __import__("json").loads(done.stdout)
    assert Path(module).is_relative_to(plain_install)  # the installed copy, not the checkout
    assert repository == str(ROOT / "models") and Path(repository).is_dir()
    assert fixture == str(ROOT / "tests" / "fixtures" / "mnist") and Path(fixture).is_dir()
    assert origin == "repository test fixture"
    # The benchmark runs from the checkout (python -m bench) on the installed server.
    bench = run(plain_install, sys.executable, "-P", "-c",
                f"import sys; sys.path.append({str(ROOT)!r}); import bench.__main__ as b;"
                "print(b.BenchSettings().repository.resolve())", cwd=ROOT)
    assert bench.returncode == 0, bench.stderr[-2000:]
    assert bench.stdout.strip() == str(ROOT / "models")


def test_plain_install_help_shows_no_folder_inside_the_install(plain_install, tmp_path):
    for command in ("highway-serve", "highway-export"):
        done = run(plain_install, str(plain_install / "bin" / command), "--help", cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        assert str(plain_install) not in done.stdout and "site-packages" not in done.stdout
    serve = run(plain_install, str(plain_install / "bin" / "highway-serve"), "--help",
                cwd=tmp_path).stdout
    assert "default models]" in " ".join(serve.split())
