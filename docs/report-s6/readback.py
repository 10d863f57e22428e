"""Throwaway: read the running report sweep (oomlab-report) back into the report's cluster part
without creating or deleting anything, and write it (for a report that had to be stopped)."""
import sys
from pathlib import Path
from oomlab.cli import kube_sweep, report_cluster as rc, report as rep, report_render as render
from oomlab.cli import report_model as model

real_status = kube_sweep.sweep_status
rc._replace_leftover = lambda ns, name: None
kube_sweep.create_sweep = lambda ns, body: None
kube_sweep.delete_sweep = lambda *a, **k: None
kube_sweep.sweep_status = lambda ns, name: {**real_status(ns, name), "phase": "Done"}
part = rc.measure_cluster(model.SCENARIOS, image="oomlab/memhog:dev", timeout_s=900.0)
report = rep.Report(started=sys.argv[2] if len(sys.argv) > 2 else "?", cluster=part)
report.groups["cluster"] = part.wall_s
for p in render.write(report, Path(sys.argv[1]), charts=False):
    print(p)
print(render.cluster_summary(report))
