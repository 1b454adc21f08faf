"""Every speed and memory goal measured side by side on the demo's real data, in one run: padding,
scoring, ingest, Ray scoring, orchestration, contention, GPU. `make bench` runs it in full (about 30 min
on 2 cores); `--quick` sizes it for CI. Writes bench/results/<date>.json and .md (the README's table).

Usage: python bench/run.py [--quick] [--out bench/results] [--sections padding,scoring,...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from bench.suite import common  # noqa: E402

SECTIONS = ("padding", "scoring", "ingest", "cluster", "orchestration", "contention", "gpu")


def machine() -> dict:
    import torch

    from models.threads import available_cpus, default_threads

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpus": available_cpus(),
        "torch_threads": default_threads(),
        "gpu": gpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def number(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"


def table(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    keys = list(rows[0])
    cells = [[number(r[k]) if isinstance(r[k], float) else str(r[k]) for k in keys] for r in rows]
    return [f"| {' | '.join(keys)} |", f"|{'---|' * len(keys)}", *(f"| {' | '.join(c)} |" for c in cells)]


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        f"Measured {results['date']} by `python bench/run.py{' --quick' if results['quick'] else ''}` in "
        f"{results['seconds']:.0f} s on {m['cpus']} CPUs ({m['torch_threads']} torch thread(s)), "
        f"{m['gpu'] or 'no GPU'}, torch {m['torch']}, Python {m['python']}.",
        "",
        "| goal | measured | target | met |",
        "|---|---|---|---|",
    ]
    for section in results["sections"].values():
        for g in section["goals"]:
            met = {True: "yes", False: "**no**", None: "(reported)"}[g["met"]]
            sign = ">=" if g["higher_is_better"] else "<="
            note = f" ({g['note']})" if g["note"] else ""
            lines.append(
                f"| {g['goal']}{note} | {number(g['value'])} {g['unit']} | {sign} {number(g['target'])} "
                f"{g['unit']} | {met} |"
            )
    for section in results["sections"].values():
        lines += ["", f"**{section['title']}**", ""]
        if section.get("skipped"):
            lines.append(section["skipped"])
        lines += table(section["rows"])
        if section.get("memory"):
            lines += ["", *table(section["memory"])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized data; minutes, not ten")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"), help="where the results go")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"some of {','.join(SECTIONS)}")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        parser.error(f"--sections: unknown {unknown}; choose from {','.join(SECTIONS)}")
    from models import threads

    threads.apply()  # the project's setting, as training and scoring use it
    began = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="rnnflow-bench-"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'data' / 'mlflow.db'}"
    results = {
        "date": f"{datetime.now(UTC):%Y-%m-%d}",
        "quick": args.quick,
        "machine": machine(),
        "sections": {},
    }
    try:
        bench = common.Bench(quick=args.quick, work=work)
        print(f"preparing the demo's data in {work}", flush=True)
        results["prepared"] = common.prepare(bench)
        for name in chosen:
            print(f"{name} ...", flush=True)
            section_began = time.perf_counter()
            module = __import__(f"bench.suite.{name}", fromlist=["run"])
            results["sections"][name] = module.run(bench) | {"seconds": time.perf_counter() - section_began}
            print(f"{name}: {results['sections'][name]['seconds']:.0f} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["seconds"] = time.perf_counter() - began
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{results['date']}{'-quick' if args.quick else ''}"
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (out / f"{stem}.md").write_text(markdown(results))
    print("\n" + markdown(results))
    print(f"wrote {out / stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
