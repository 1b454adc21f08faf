"""`python bench/run.py --quick` runs in CI: every section runs on real data and reports its goals.
No timing is asserted (the machine may be busy); only that it ran and what it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from bench.run import SECTIONS, markdown

ROOT = Path(__file__).resolve().parents[2]


def test_the_quick_benchmark_runs_every_section_and_writes_json_and_markdown(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "MLFLOW_"))}
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1500,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    (results_file,) = tmp_path.glob("*-quick.json")
    results = json.loads(results_file.read_text())
    assert list(results["sections"]) == list(SECTIONS)
    assert results["machine"]["cpus"] >= 1 and results["quick"] is True
    for name, section in results["sections"].items():
        if name == "gpu" and not torch.cuda.is_available():
            assert section["skipped"].startswith("no CUDA device") and section["rows"] == []
            continue
        assert section["rows"], name
        for goal in section["goals"]:
            assert goal["met"] in (True, False, None) and goal["value"] == goal["value"], goal  # not NaN
    scoring = results["sections"]["scoring"]
    assert [m["mode"] for m in scoring["memory"]] == ["streamed", "all at once", "streamed"]
    assert all(m["peak_rss_mb"] > 50 for m in scoring["memory"])
    parts = {r["part"].split(":")[0] for r in results["sections"]["orchestration"]["rows"]}
    assert {"Prefect", "MLflow"} <= parts
    assert {r["setting"] for r in results["sections"]["contention"]["rows"]} == {"project", "torch default"}
    ray_rows = results["sections"]["cluster"]["rows"]
    assert [(r["engine"], r["nodes"]) for r in ray_rows] == [
        ("1 process", 1),
        ("Ray, 1 worker", 1),
        ("Ray, 2 workers", 2),
        ("Ray, 2 workers", 2),
    ]
    assert all(r["actor_peak_rss_mb"] > 50 for r in ray_rows[1:])
    assert (tmp_path / results_file.name.replace(".json", ".md")).read_text() == markdown(results)
    scratch = out.stdout.split("preparing the demo's data in ", 1)[1].split()[0]
    assert not Path(scratch).exists(), "the scratch folder is removed"
