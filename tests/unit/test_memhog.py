"""memhog's contract: its arguments, its JSON lines and its exit codes.

memhog runs as a subprocess with small sizes (a few MiB), so these tests take seconds.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import math
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

MEMHOG = Path(__file__).resolve().parents[2] / "workloads" / "memhog.py"
MiB = 1 << 20
KiB = 1 << 10

# What Debian bookworm's python3-minimal ships (the offline base image has nothing more).
# json is NOT among them: memhog encodes its lines itself.
MINIMAL_STDLIB = {
    "__future__", "argparse", "collections", "contextlib", "math", "os", "re", "signal",
    "sys", "time",
}  # fmt: skip

PHASES = {"allocate", "release", "steady", "spike", "hold", "reaccess"}


def load_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("memhog", MEMHOG)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["memhog"] = module
    spec.loader.exec_module(module)
    return module


memhog = load_module()


def run(*args: str, timeout: float = 60, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return subprocess.run(
        [sys.executable, str(MEMHOG), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
        **kwargs,
    )


def lines_of(stdout: str) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in stdout.splitlines()]
    for r in records:
        assert {"event", "elapsed_s", "rss_bytes", "mode"} <= r.keys(), r
        assert isinstance(r["elapsed_s"], float)
        assert r["rss_bytes"] is None or isinstance(r["rss_bytes"], int)
    return records


def ok(*args: str) -> list[dict[str, Any]]:
    proc = run(*args)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    records = lines_of(proc.stdout)
    assert records[0]["event"] == "start"
    assert records[-1]["event"] == "summary"
    assert records[-1]["status"] == "completed"
    assert [r["event"] for r in records[1:-1]] == ["progress"] * (len(records) - 2)
    for r in records[1:-1]:
        assert r["phase"] in PHASES
    return records


# --------------------------------------------------------------------------- modes


def test_bulk_holds_everything_and_touches_every_page() -> None:
    records = ok("bulk", "--size", "24Mi", "--chunk", "10Mi")
    start, summary = records[0], records[-1]
    assert start["mode"] == "bulk"
    assert start["size_bytes"] == 24 * MiB
    assert start["chunk_bytes"] == 10 * MiB
    assert start["chunks"] == 3  # 10 + 10 + 4
    assert isinstance(start["pid"], int)
    allocated = [r["allocated_bytes"] for r in records[1:-1]]
    assert allocated == sorted(allocated)  # never released
    assert summary["allocated_bytes"] == 24 * MiB
    assert summary["processed_bytes"] == 24 * MiB
    assert summary["peak_allocated_bytes"] == 24 * MiB
    # Resident, not just reserved: the high-water mark covers every byte asked for.
    assert summary["peak_rss_bytes"] >= 24 * MiB
    assert summary["rss_bytes"] >= 24 * MiB


def test_bulk_defaults() -> None:
    proc = run("bulk", "--help")
    assert proc.returncode == 0
    assert "500Mi" in proc.stdout and "1000Mi" in proc.stdout


def test_streaming_keeps_a_bounded_window() -> None:
    records = ok("streaming", "--size", "20Mi", "--chunk", "2Mi", "--window", "3")
    start, summary = records[0], records[-1]
    assert start["window"] == 3
    assert start["expected_peak_bytes"] == 6 * MiB
    assert max(r["allocated_bytes"] for r in records[1:-1]) == 6 * MiB
    assert summary["peak_allocated_bytes"] == 6 * MiB
    assert summary["processed_bytes"] == 20 * MiB
    assert summary["allocated_bytes"] == 6 * MiB
    assert any(r["phase"] == "release" for r in records[1:-1])
    processed = [r["processed_bytes"] for r in records[1:-1]]
    assert processed == sorted(processed)


def test_streaming_window_larger_than_the_data() -> None:
    records = ok("streaming", "--size", "4Mi", "--chunk", "1Mi", "--window", "10")
    assert records[-1]["peak_allocated_bytes"] == 4 * MiB
    assert not any(r.get("phase") == "release" for r in records)


def test_leak_grows_by_step_every_interval() -> None:
    t = time.monotonic()
    records = ok("leak", "--size", "10Mi", "--step", "2Mi", "--interval", "0.05")
    assert time.monotonic() - t >= 4 * 0.05  # 5 steps, 4 pauses
    allocated = [r["allocated_bytes"] for r in records if r["event"] == "progress"]
    assert allocated == [2 * MiB, 4 * MiB, 6 * MiB, 8 * MiB, 10 * MiB]
    assert records[-1]["peak_allocated_bytes"] == 10 * MiB
    assert records[0]["interval_s"] == 0.05


def test_spike_rises_and_falls_back_to_base() -> None:
    records = ok(
        "spike", "--size", "12Mi", "--base", "4Mi", "--steady", "0.05", "--spike-seconds", "0.05"
    )
    phases = [r["phase"] for r in records[1:-1]]
    assert phases[0] == "allocate"
    assert phases.index("steady") < phases.index("spike") < phases.index("release")
    assert phases[-1] == "steady"
    summary = records[-1]
    assert summary["peak_allocated_bytes"] == 12 * MiB
    assert summary["allocated_bytes"] == 4 * MiB
    assert summary["processed_bytes"] == 12 * MiB
    assert records[0]["spike_bytes"] == 8 * MiB


def test_hold_keeps_the_memory_then_exits() -> None:
    t = time.monotonic()
    records = ok("bulk", "--size", "2Mi", "--hold", "0.3")
    assert time.monotonic() - t >= 0.3
    hold = [r for r in records if r.get("phase") == "hold"]
    assert len(hold) == 1 and hold[0]["allocated_bytes"] == 2 * MiB
    assert records[-1]["elapsed_s"] >= 0.3


def test_progress_inside_a_big_chunk() -> None:
    records = ok("bulk", "--size", "8Mi", "--chunk", "8Mi", "--report-every", "1Mi")
    allocated = [r["allocated_bytes"] for r in records if r["event"] == "progress"]
    assert allocated == [i * MiB for i in range(1, 9)]


def test_report_every_larger_than_chunks_still_reports_each_chunk() -> None:
    records = ok("bulk", "--size", "3Mi", "--chunk", "1Mi", "--report-every", "50Mi")
    assert [r["allocated_bytes"] for r in records[1:-1]] == [1 * MiB, 2 * MiB, 3 * MiB]


def test_odd_sizes_come_out_exact() -> None:
    records = ok("streaming", "--size", "1000001", "--chunk", "300000", "--window", "1")
    assert records[0]["chunks"] == 4
    assert records[-1]["processed_bytes"] == 1000001
    assert records[-1]["peak_allocated_bytes"] == 300000


def test_start_and_summary_carry_the_cgroup_when_there_is_one() -> None:
    records = ok("bulk", "--size", "1Mi")
    if not os.path.exists("/proc/self/cgroup"):
        pytest.skip("no /proc/self/cgroup")
    for r in (records[0], records[-1]):
        cg = r["cgroup"]
        assert cg is None or cg["version"] in (1, 2)


def test_reaccess_passes_touch_the_held_memory_again_and_are_timed() -> None:
    records = ok("bulk", "--size", "24Mi", "--chunk", "10Mi", "--reaccess", "3",
                 "--report-every", "8Mi")  # fmt: skip
    start, summary = records[0], records[-1]
    assert start["reaccess"] == 3
    again = [r for r in records if r.get("phase") == "reaccess"]
    assert [r["reaccess_pass"] for r in again] == sorted(r["reaccess_pass"] for r in again)
    assert {r["reaccess_pass"] for r in again} == {1, 2, 3}
    assert again[-1]["reaccessed_bytes"] == 3 * 24 * MiB
    assert all(r["allocated_bytes"] == 24 * MiB for r in again)  # nothing freed or added
    assert summary["processed_bytes"] == 24 * MiB  # allocation's count, untouched by re-access
    assert summary["reaccess_passes"] == 3
    assert len(summary["reaccess_pass_s"]) == 3
    assert summary["reaccess_s"] == pytest.approx(sum(summary["reaccess_pass_s"]), abs=1e-5)
    assert 0 < summary["allocate_s"] <= summary["elapsed_s"]


def test_no_reaccess_means_no_reaccess_time() -> None:
    summary = ok("leak", "--size", "4Mi", "--step", "2Mi", "--interval", "0")[-1]
    assert summary["reaccess_passes"] == 0
    assert summary["reaccess_s"] is None
    assert summary["allocate_s"] > 0


def test_reaccess_of_a_streaming_window_touches_only_what_is_alive() -> None:
    records = ok("streaming", "--size", "8Mi", "--chunk", "2Mi", "--window", "2",
                 "--reaccess", "1")  # fmt: skip
    assert records[-1]["reaccess_passes"] == 1
    assert [r for r in records if r.get("phase") == "reaccess"][-1]["reaccessed_bytes"] == 4 * MiB


def test_start_and_summary_carry_raw_swap_counters() -> None:
    records = ok("bulk", "--size", "1Mi")
    for r in (records[0], records[-1]):
        assert r["majflt"] is None or isinstance(r["majflt"], int)
        if os.path.exists("/proc/vmstat"):
            assert set(r["vmstat"]) <= {"pswpin", "pswpout", "pgmajfault"}
            assert isinstance(r["vmstat"]["pgmajfault"], int)
        if r["cgroup"] is not None and r["cgroup"]["stat"] is not None:
            assert "pgmajfault" in r["cgroup"]["stat"]
    assert records[-1]["vmstat"]["pgmajfault"] >= records[0]["vmstat"]["pgmajfault"]


def test_flat_keyed_reader_keeps_only_the_asked_keys(tmp_path: Path) -> None:
    stat = tmp_path / "memory.stat"
    stat.write_text("cache 10\nswap 4096\npgmajfault 7\nweird line here\npswpin x\n")
    assert memhog.read_flat_keyed(str(stat), ("swap", "pgmajfault", "pswpin")) == {
        "swap": 4096,
        "pgmajfault": 7,
    }
    assert memhog.read_flat_keyed(str(tmp_path / "missing"), ("swap",)) is None


# --------------------------------------------------------------------------- output


def test_lines_survive_a_kill_without_pythonunbuffered() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    proc = subprocess.Popen(
        [sys.executable, str(MEMHOG), "bulk", "--size", "2Mi", "--hold", "30"],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert proc.stdout is not None
    got = []
    try:
        for line in proc.stdout:
            got.append(json.loads(line))
            if got[-1].get("phase") == "hold":
                proc.kill()  # like the kernel's OOM killer: no chance to flush anything
                break
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert got[0]["event"] == "start"
    assert got[-1]["allocated_bytes"] == 2 * MiB


def test_sigterm_ends_with_a_summary() -> None:
    proc = subprocess.Popen(
        [sys.executable, str(MEMHOG), "bulk", "--size", "1Mi", "--hold", "30"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if json.loads(line).get("phase") == "hold":
            proc.send_signal(signal.SIGTERM)
            break
    rest = proc.stdout.read()
    assert proc.wait(timeout=10) == 128 + signal.SIGTERM
    summary = json.loads(rest.splitlines()[-1])
    assert summary["event"] == "summary"
    assert summary["status"] == "terminated"


def test_memory_error_exits_3_with_a_summary() -> None:
    limit = 256 * MiB  # address space: enough for the interpreter, not for 1000Mi

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    proc = run("bulk", "--size", "1000Mi", "--chunk", "100Mi", "--report-every", "10Mi",
               preexec_fn=cap)  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    records = lines_of(proc.stdout)
    summary = records[-1]
    assert summary["event"] == "summary"
    assert summary["status"] == "memory_error"
    assert summary["exit_code"] == 3
    assert 0 < summary["allocated_bytes"] < 1000 * MiB
    assert summary["peak_allocated_bytes"] == summary["allocated_bytes"]
    assert "Traceback" not in proc.stderr


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8Mi", 8 * MiB),
        ("1000Mi", 1000 * MiB),
        ("1Gi", 1 << 30),
        ("1.5Gi", 3 << 29),
        ("0.5Mi", 512 * KiB),
        ("2Ti", 2 << 40),
        ("1Ki", 1024),
        ("4096", 4096),
        ("1", 1),
        ("007Mi", 7 * MiB),
    ],
)
def test_sizes_accepted(text: str, expected: int) -> None:
    assert memhog.parse_size(text) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("500m", "ambiguous"),
        ("500M", "ambiguous"),
        ("500MB", "ambiguous"),
        ("500MiB", "ambiguous"),
        ("500mi", "ambiguous"),
        ("1g", "ambiguous"),
        ("1G", "ambiguous"),
        ("1.5", "not a size"),
        ("", "not a size"),
        ("abc", "not a size"),
        (" 5Mi", "not a size"),
        ("5 Mi", "ambiguous"),
        ("+5Mi", "not a size"),
        ("1e6", "not a size"),
        ("0", "greater than zero"),
        ("0Mi", "greater than zero"),
        ("-5", "greater than zero"),
        ("0.1Ki", "whole number of bytes"),
    ],
)
def test_sizes_rejected(text: str, why: str) -> None:
    with pytest.raises(memhog.UsageError) as err:
        memhog.parse_size(text, "--size")
    assert why in str(err.value)
    assert str(err.value).startswith(f"memhog: --size {text!r} ")


@pytest.mark.parametrize("text", ["500m", "500M", "500MB", "1g", "-5", "0", ""])
def test_bad_size_exits_2_with_one_line(text: str) -> None:
    proc = run("bulk", f"--size={text}")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(f"memhog: --size {text!r} ")


def test_ambiguous_message_is_exact() -> None:
    proc = run("bulk", "--size", "500m")
    assert proc.stderr == (
        "memhog: --size '500m' is ambiguous: use binary units like 500Mi "
        "or a plain number of bytes\n"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["bulk", "--chunk", "0"],
        ["bulk", "--chunk", "500m"],
        ["bulk", "--report-every", "1MB"],
        ["streaming", "--window", "0"],
        ["streaming", "--window", "two"],
        ["leak", "--step", "-1Mi"],
        ["leak", "--interval", "-1"],
        ["leak", "--interval", "nan"],
        ["bulk", "--hold", "inf"],
        ["spike", "--size", "100Mi", "--base", "100Mi"],
        ["spike", "--size", "100Mi", "--base", "200Mi"],
        ["spike", "--steady", "-0.1"],
        ["bulk", "--window", "2"],  # an option of another mode
        ["explode"],
        [],
    ],
)
def test_bad_arguments_exit_2(args: list[str]) -> None:  # see also --reaccess below
    proc = run(*args)
    assert proc.returncode == 2, proc.stdout
    assert proc.stdout == ""
    assert "memhog" in proc.stderr
    assert "Traceback" not in proc.stderr


# --------------------------------------------------------------------------- internals


def test_json_encoder_round_trips() -> None:
    value = {
        "s": 'quote " backslash \\ newline \n tab \t ctrl \x01 del \x7f é ✓',
        "i": -(2**63),
        "f": 0.000012,
        "big": 1.5e300,
        "n": None,
        "t": True,
        "l": [1, "two", None, {"x": False}],
    }
    assert json.loads(memhog.to_json(value)) == value
    assert memhog.to_json(math.inf) == "null"


def test_only_python3_minimal_modules() -> None:
    tree = ast.parse(MEMHOG.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= MINIMAL_STDLIB, imported - MINIMAL_STDLIB


def test_chunk_sizes() -> None:
    assert memhog.chunk_sizes(1000 * MiB, 500 * MiB) == [500 * MiB, 500 * MiB]
    assert memhog.chunk_sizes(10, 4) == [4, 4, 2]
    assert memhog.chunk_sizes(3, 10) == [3]


@pytest.mark.parametrize("value", ["-1", "x", "1.5"])
def test_bad_reaccess_exits_2(value: str) -> None:
    proc = run("bulk", "--size", "1Mi", "--reaccess", value)
    assert proc.returncode == 2
    assert "--reaccess" in proc.stderr


def fake_v2_cgroup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **files: str) -> None:
    for name, text in files.items():
        (tmp_path / name.replace("_", ".")).write_text(text + "\n")
    found = (2, str(tmp_path), memhog._CGROUP_V2_FILES, "/kubepods.slice/x.scope")
    monkeypatch.setattr(memhog, "_CGROUP_FOUND", [found])


def test_memory_qos_files_are_reported_with_max_as_null(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_v2_cgroup(
        tmp_path, monkeypatch, memory_max="524288000", memory_swap_max="587960320",
        memory_min="0", memory_low="419430400", memory_high="max",
    )  # fmt: skip
    cg = memhog.cgroup_memory()
    assert cg is not None
    assert (cg["memory_min_bytes"], cg["memory_low_bytes"], cg["memory_high_bytes"]) == (
        0, 419430400, None,
    )  # fmt: skip
    assert cg["swap_limit_bytes"] == 587960320
    assert "memory_usage_bytes" not in cg  # unreadable files are left out, as before


def test_progress_lines_re_read_the_swap_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_v2_cgroup(tmp_path, monkeypatch, memory_max="1", memory_swap_max="587960320")
    assert memhog.live_swap_limit() == {"swap_limit_bytes": 587960320}
    (tmp_path / "memory.swap.max").write_text("max\n")
    assert memhog.live_swap_limit() == {"swap_limit_bytes": None}
    (tmp_path / "memory.swap.max").unlink()
    assert memhog.live_swap_limit() == {}
    monkeypatch.setattr(memhog, "_CGROUP_FOUND", [(1, str(tmp_path), {}, "/")])
    assert memhog.live_swap_limit() == {}  # v1 has no swap-alone file


def test_progress_lines_carry_the_swap_limit_only_on_cgroup_v2() -> None:
    records = ok("bulk", "--size", "2Mi", "--chunk", "1Mi")
    progress = [r for r in records if r["event"] == "progress"]
    assert progress
    if (records[0]["cgroup"] or {}).get("version") != 2:
        assert not any("swap_limit_bytes" in r for r in progress)
    elif "swap_limit_bytes" in records[0]["cgroup"]:
        assert all("swap_limit_bytes" in r for r in progress)
