"""Planning at scale: synthetic 500 / 5,000 / 20,000-node projects, failures at the root, middle and a leaf.

Each case runs in a fresh subprocess (so peak RSS is that case's own) and measures, from the artifacts'
JSON bytes: json parsing, `parse_run_results`, `parse_manifest` and `make_plan`; then the artifact API
calls `restart.orchestrate.plan_restart` makes for it (through a counting fake client) and the longest command.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import synthetic

SIZES = (500, 5_000, 20_000)
CASE_TIMEOUT = 180.0  # seconds for one case (parsing + planning) before it is reported as too slow


def prepare(folder: Path, size: int) -> list[tuple[str, str, Path]]:
    """Write one manifest and one run_results.json per failure point; [(where, failed node, case dir)]."""
    project = synthetic.make_project(size)
    manifest = folder / f"manifest_{size}.json"
    manifest.write_bytes(synthetic.dump(project.manifest))
    cases = []
    for where in synthetic.WHERE:
        failed = synthetic.failure_point(project, where)
        case = folder / f"case_{size}_{where}"
        case.mkdir()
        (case / "run_results.json").write_bytes(synthetic.dump(synthetic.run_results(project, failed)))
        (case / "manifest.json").symlink_to(manifest)
        cases.append((where, failed, case))
    return cases


def _rss_mb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across
    fork and exec, so a child of a big benchmark runner would report the runner's size."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class CountingClient:
    """What `plan_restart` asks of dbt Cloud, answered from files and counted."""

    def __init__(self, case: Path) -> None:
        self.case = case
        self.calls: list[str] = []

    def get_artifact(self, run_id: int, path: str, step: int | None = None) -> Any:
        return json.loads(self.get_artifact_bytes(run_id, path, step))

    def get_artifact_bytes(self, run_id: int, path: str, step: int | None = None) -> bytes:
        self.calls.append(path)
        return (self.case / path).read_bytes()


def measure(case: Path) -> dict[str, Any]:
    """One case, in this process: stage timings, peak RSS, API calls, longest command."""
    from restart.artifacts import parse_manifest, parse_run_results
    from restart.orchestrate import plan_restart
    from restart.plan import StepArtifacts, make_plan
    from restart.records import run_from_json

    run = run_from_json(synthetic.failed_run_json())
    results_bytes = (case / "run_results.json").read_bytes()
    manifest_bytes = (case / "manifest.json").read_bytes()
    base = _rss_mb()
    stages: dict[str, float] = {}
    started = time.perf_counter()
    document = json.loads(results_bytes)
    stages["results_json"] = time.perf_counter() - started
    mark = time.perf_counter()
    results = parse_run_results(document)
    del document
    stages["parse_run_results"] = time.perf_counter() - mark
    mark = time.perf_counter()
    manifest_document = json.loads(manifest_bytes)
    stages["manifest_json"] = time.perf_counter() - mark
    mark = time.perf_counter()
    manifest = parse_manifest(manifest_document)
    del manifest_document
    stages["parse_manifest"] = time.perf_counter() - mark
    mark = time.perf_counter()
    plan = make_plan(run, {4: StepArtifacts(run_results=results, manifest=manifest)})
    stages["make_plan"] = time.perf_counter() - mark
    total = time.perf_counter() - started
    peak = _rss_mb()
    client = CountingClient(case)
    pipeline = plan_restart(client, run)  # type: ignore[arg-type]
    # plan_restart may skip the manifest (models and seeds only): the same nodes, other selectors.
    assert pipeline.rerun_nodes == plan.rerun_nodes, "plan_restart and make_plan disagree"
    return {
        "seconds": total,
        "stages": stages,
        "peak_rss_mb": peak,
        "base_rss_mb": base,
        "artifact_calls": len(client.calls),
        "artifacts": client.calls,
        "rerun_nodes": len(plan.rerun_nodes),
        "longest_command": max((len(c) for c in plan.steps_override), default=0),
        "inexact": sum(1 for s in plan.steps if "without manifest.json" in s.warning),
    }


def measure_load(path: Path, compact: bool) -> dict[str, Any]:
    """Only reading the manifest from its bytes: `parse_manifest(json.loads(...))` or `load_manifest`."""
    from restart.artifacts import load_manifest, parse_manifest

    raw = path.read_bytes()
    base = _rss_mb()
    started = time.perf_counter()
    manifest = load_manifest(raw) if compact else parse_manifest(json.loads(raw))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_rss_mb": _rss_mb(), "base_rss_mb": base, "nodes": len(manifest.nodes)}


def run_case(case: Path, mode: str = "plan") -> dict[str, Any]:
    """`measure` in a fresh interpreter; {'error': ...} when it fails or exceeds CASE_TIMEOUT."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.scale", str(case), mode],
            capture_output=True,
            text=True,
            timeout=CASE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"> {CASE_TIMEOUT:g} s"}
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def table(sizes: tuple[int, ...] = SIZES) -> list[str]:
    """Run every case; markdown table lines."""
    lines = [
        "| nodes | manifest | failure at | rerun nodes | plan time | json | parse_manifest | make_plan "
        "| peak RSS | artifact calls | longest command |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    manifests: dict[int, tuple[float, dict[str, Any], dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as scratch:
        for size in sizes:
            folder = Path(scratch) / str(size)
            folder.mkdir()
            cases = prepare(folder, size)
            megabytes = (folder / f"manifest_{size}.json").stat().st_size / 1e6
            for where, failed, case in cases:
                result = run_case(case)
                head = f"| {size:,} | {megabytes:.0f} MB | {where} (`{failed.split('.', 1)[1]}`) "
                if "error" in result:
                    lines.append(head + f"| | {result['error']} | | | | | | |")
                    continue
                st = result["stages"]
                lines.append(
                    head + f"| {result['rerun_nodes']:,} | {result['seconds']:.2f} s "
                    f"| {st['results_json'] + st['manifest_json']:.2f} s | {st['parse_manifest']:.2f} s "
                    f"| {st['make_plan']:.2f} s | {result['peak_rss_mb']:.0f} MB "
                    f"| {result['artifact_calls']} ({', '.join(result['artifacts'])}) "
                    f"| {result['longest_command']:,} chars |"
                )
                print(lines[-1], file=sys.stderr, flush=True)
            manifests[size] = (megabytes, *(run_case(cases[0][2], mode) for mode in ("full", "compact")))
    lines += [
        "",
        "Reading manifest.json alone, from its bytes (peak RSS of the whole process, bytes included):",
        "",
        "| nodes | manifest | `parse_manifest(json.loads(raw))` | peak RSS | `load_manifest(raw)` | peak RSS |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for size, (megabytes, full, compact) in manifests.items():
        cells = [
            f"{r['seconds']:.2f} s | {r['peak_rss_mb']:.0f} MB" if "error" not in r else f"{r['error']} |"
            for r in (full, compact)
        ]
        lines.append(f"| {size:,} | {megabytes:.0f} MB | {cells[0]} | {cells[1]} |")
    return lines


if __name__ == "__main__":
    if len(sys.argv) == 3 and not sys.argv[1].isdigit():
        case_dir, mode = Path(sys.argv[1]), sys.argv[2]
        outcome = measure(case_dir) if mode == "plan" else measure_load(case_dir / "manifest.json", mode == "compact")
        print(json.dumps(outcome))
    else:
        wanted = tuple(int(a) for a in sys.argv[1:]) or SIZES
        print("\n".join(table(wanted)))
