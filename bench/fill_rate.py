#!/usr/bin/env python3
"""memhog's fill rate against stress-ng's, measured in the same run on the same machine.

"Fill rate" is how fast a program makes fresh anonymous memory resident: MiB per second from
asking for N bytes to having all N of them in RAM. For the goal (memhog >= 0.5x stress-ng) the
two programs do the same job once per run:

  memhog     memhog.py bulk --size N --chunk N
             one chunk of N bytes, taken in --report-every segments; every page is faulted in
             and written (bytearray's zero fill plus one byte per page), then the process exits.
  stress-ng  stress-ng --vm 1 --vm-bytes N --vm-populate --vm-method write64 --vm-ops 1
             one mmap(MAP_POPULATE) of N bytes: the kernel faults in and zeroes every page up
             front; with --vm-ops 1 the write64 method stops after its first bogo op (a few
             hundred bytes), so the run is: map + populate N bytes, unmap, exit. Populating in the
             kernel skips the per-page fault trap, so this is a hard baseline for a program that
             writes its pages from user space.

Two measurements, both reported:

  wall (the one the goal is judged on)
      Each program is timed from spawn to exit by this script, for N and for a small size n0.
      rate = (N - n0) / (median wall(N) - median wall(n0)). The difference cancels what does not
      grow with N: the interpreter's or stress-ng's start-up and exit. Teardown of the N bytes
      (unmapping) is in both.
  self
      What each program says about itself: memhog's summary line (processed_bytes / touch_s, the
      time spent allocating and touching) and stress-ng's --metrics-brief "real time" of the vm
      stressor (N / real time; this one also holds the stressor's set-up and the unmap).

The runs alternate (memhog, stress-ng, memhog, ...) after one warm-up round, and each value is
the median of --repeat runs, so that a slow phase of the machine (first touch of a VM's memory
by its host, other work) hits both programs alike.

Usage: python3 bench/fill_rate.py [--size 1000Mi] [--small 16Mi] [--repeat 5] [--json]
Exit code: 0, or 1 with --check when the wall ratio is below --goal (default 0.5).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MEMHOG = ROOT / "workloads" / "memhog.py"
MiB = 1 << 20
UNITS = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}
# stress-ng: metrc: [pid] vm   <bogo ops> <real s> <usr s> <sys s> <bogo/s real> <bogo/s cpu>
METRICS = re.compile(r"\bvm\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+[\d.]+\s+[\d.]+\s*$", re.M)
RUN_TIMEOUT_S = 120


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi)?", text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r}: use binary units like 500Mi")
    return int(m.group(1)) * UNITS.get(m.group(2) or "", 1)


def run_memhog(python: str, nbytes: int) -> dict[str, float]:
    cmd = [python, str(MEMHOG), "bulk", "--size", str(nbytes), "--chunk", str(nbytes)]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"memhog exited {proc.returncode}: {proc.stderr.strip()}")
    summary = json.loads(proc.stdout.splitlines()[-1])
    return {"wall_s": wall, "self_s": float(summary["touch_s"]),
            "peak_rss_bytes": float(summary["peak_rss_bytes"])}  # fmt: skip


def run_stress_ng(stress_ng: str, nbytes: int) -> dict[str, float]:
    cmd = [stress_ng, "--vm", "1", "--vm-bytes", str(nbytes), "--vm-populate",
           "--vm-method", "write64", "--vm-ops", "1", "--metrics-brief"]  # fmt: skip
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"stress-ng exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
    m = METRICS.search(proc.stdout + proc.stderr)
    if not m:
        raise RuntimeError("no vm line in stress-ng's --metrics-brief output")
    return {"wall_s": wall, "self_s": float(m.group(2)), "bogo_ops": float(m.group(1))}


def stress_ng_version(stress_ng: str) -> str:
    out = subprocess.run([stress_ng, "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=parse_size, default=1000 * MiB, help="N (default 1000Mi)")
    ap.add_argument("--small", type=parse_size, default=16 * MiB,
                    help="n0, for start-up cost (default 16Mi)")  # fmt: skip
    ap.add_argument("--repeat", type=int, default=5, help="runs per program and size (default 5)")
    ap.add_argument("--python", default=sys.executable, help="interpreter for memhog")
    ap.add_argument("--stress-ng", default=shutil.which("stress-ng") or "stress-ng")
    ap.add_argument("--goal", type=float, default=0.5, help="required wall ratio (default 0.5)")
    ap.add_argument("--check", action="store_true", help="exit 1 when the ratio is below --goal")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    a = ap.parse_args()
    if a.small >= a.size:
        ap.error("--small must be below --size")
    if not shutil.which(a.stress_ng):
        print("fill_rate: stress-ng not found (apt-get install stress-ng)", file=sys.stderr)
        return 2

    tools = {
        "memhog": lambda n: run_memhog(a.python, n),
        "stress-ng": lambda n: run_stress_ng(a.stress_ng, n),
    }
    samples: dict[str, dict[int, list[dict[str, float]]]] = {
        t: {a.size: [], a.small: []} for t in tools
    }
    for fn in tools.values():  # warm-up, not counted
        fn(a.size)
    for i in range(a.repeat):
        order = list(tools) if i % 2 == 0 else list(reversed(tools))
        for name in order:
            for n in (a.size, a.small):
                samples[name][n].append(tools[name](n))
        print(f"fill_rate: round {i + 1}/{a.repeat} done", file=sys.stderr)

    def med(name: str, n: int, key: str) -> float:
        return statistics.median(s[key] for s in samples[name][n])

    result: dict[str, Any] = {
        "size_bytes": a.size,
        "small_bytes": a.small,
        "repeat": a.repeat,
        "machine": {
            "cpus": os.cpu_count(),
            "kernel": os.uname().release,
            "python": sys.version.split()[0],
            "stress_ng": stress_ng_version(a.stress_ng),
            "thp": Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text().strip()
            if Path("/sys/kernel/mm/transparent_hugepage/enabled").exists()
            else None,
        },
        "tools": {},
    }
    for name in tools:
        wall_n, wall_0 = med(name, a.size, "wall_s"), med(name, a.small, "wall_s")
        delta = wall_n - wall_0
        result["tools"][name] = {
            "wall_s_median": round(wall_n, 4),
            "wall_s_small_median": round(wall_0, 4),
            "wall_s_all": [round(s["wall_s"], 4) for s in samples[name][a.size]],
            "wall_mib_s": round((a.size - a.small) / MiB / delta, 1) if delta > 0 else None,
            "self_s_median": round(med(name, a.size, "self_s"), 4),
            "self_mib_s": round(a.size / MiB / med(name, a.size, "self_s"), 1),
        }
    mh, sn = result["tools"]["memhog"], result["tools"]["stress-ng"]
    ratio = mh["wall_mib_s"] / sn["wall_mib_s"] if mh["wall_mib_s"] and sn["wall_mib_s"] else None
    result["ratio_wall"] = round(ratio, 3) if ratio is not None else None
    result["ratio_self"] = round(mh["self_mib_s"] / sn["self_mib_s"], 3)
    result["goal"] = a.goal
    result["meets_goal"] = ratio is not None and ratio >= a.goal

    if a.json:
        print(json.dumps(result, indent=2))
    else:
        m = result["machine"]
        print(f"fill rate, N = {a.size // MiB} MiB (n0 = {a.small // MiB} MiB), "
              f"median of {a.repeat} runs; {m['cpus']} CPUs, kernel {m['kernel']}, "
              f"python {m['python']}, {m['stress_ng']}")  # fmt: skip
        print(f"{'':10} {'wall(N) s':>10} {'wall(n0) s':>10} {'wall MiB/s':>11} "
              f"{'self s':>8} {'self MiB/s':>11}")  # fmt: skip
        for name, r in result["tools"].items():
            print(f"{name:10} {r['wall_s_median']:>10.3f} {r['wall_s_small_median']:>10.3f} "
                  f"{r['wall_mib_s'] or float('nan'):>11.1f} {r['self_s_median']:>8.3f} "
                  f"{r['self_mib_s']:>11.1f}")  # fmt: skip
        verdict = "meets" if result["meets_goal"] else "MISSES"
        print(f"ratio memhog/stress-ng: wall {result['ratio_wall']}x "
              f"({verdict} the goal >= {a.goal}x), self {result['ratio_self']}x")  # fmt: skip
    if a.check and not result["meets_goal"]:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
