"""The skip guard of tests/conftest.py: under OOMLAB_STRICT_SKIPS=1 (make test) a skip fails its
test unless its reason starts "allowed skip: "; otherwise skips stand as pytest makes them."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"


def _conftest() -> ModuleType:
    spec = importlib.util.spec_from_file_location("oomlab_tests_conftest", CONFTEST)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_only_a_strict_run_fails_a_skip_and_an_allowed_reason_always_stands() -> None:
    skip_failure = _conftest().skip_failure
    assert skip_failure("no engine", strict=False) is None
    assert skip_failure("allowed skip: kind on cgroup v1 has no LimitedSwap", strict=True) is None
    failure = skip_failure("OOMLAB_ENGINE_PODMAN_VM is not set", strict=True)
    assert failure is not None
    assert "OOMLAB_ENGINE_PODMAN_VM is not set" in failure and "REQUIRE" in failure


def test_the_prefix_must_open_the_reason() -> None:
    skip_failure = _conftest().skip_failure
    assert skip_failure("no node (allowed skip: not really)", strict=True) is not None
    assert skip_failure("Allowed skip: wrong case", strict=True) is not None


SAMPLE = """
import pytest

def test_ran():
    pass

def test_skips():
    pytest.skip("no engine here")

def test_allowed():
    pytest.skip("allowed skip: this host cannot")

@pytest.fixture
def needs():
    pytest.skip("fixture found nothing")

def test_fixture_skip(needs):
    pass

@pytest.mark.xfail(reason="known")
def test_xfail():
    assert False
"""


def _run_sample(tmp_path: Path, strict: bool) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(CONFTEST.read_text())
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    env = {k: v for k, v in os.environ.items() if k != "OOMLAB_STRICT_SKIPS"}
    if strict:
        env["OOMLAB_STRICT_SKIPS"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "-c", "/dev/null",
         "--rootdir", str(tmp_path), str(tmp_path)],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )  # fmt: skip


@pytest.mark.parametrize("strict", [False, True])
def test_the_hook_in_a_real_session(tmp_path: Path, strict: bool) -> None:
    run = _run_sample(tmp_path, strict)
    out = run.stdout
    if not strict:
        assert run.returncode == 0, out
        assert "1 passed, 3 skipped, 1 xfailed" in out, out
        return
    assert run.returncode == 1, out
    # the plain skip fails, the fixture's skip errors at setup; the allowed one and xfail stand
    assert "1 failed, 1 passed, 1 skipped, 1 xfailed, 1 error" in out, out
    assert "skipped under OOMLAB_STRICT_SKIPS=1 (no engine here)" in out, out
    assert "skipped under OOMLAB_STRICT_SKIPS=1 (fixture found nothing)" in out, out
    assert "SKIPPED [1] test_sample.py:11: allowed skip: this host cannot" in out, out
