"""`make bench-peers`: Celery beside Tablao in one invocation, and the ratios of their figures from that run.

Runs, in turn and `--rounds` times (interleaved, so both see the same machine): scripts/peerbench.sh (Celery 5 with
Redis on loopback, installed under ~/.cache/peerbench on first use; needs `redis-server`), then Tablao's
efficiency/latency and throughput benchmarks (tests/bench/), which write their figures to a JSON-lines file
(tests/bench/results.py). Prints each round's figures and the ratios against the goals of issue 15.

The efficiency is compared like for like: Celery runs the very script Tablao's efficiency benchmark runs (one
`bash` child per task, timing its own sleep), and both are measured the same two ways from the tasks' figures:
the sleeps' own time over 4 x (first start to last end), and 50 ms per task over 4 x (the first submit or enqueue
to the last end). Celery's plain `bash -c 'sleep 0.05'` figure (its wall from the first enqueue to the last
completion counted) is printed beside them, as it was compared before 2026-12-04.
Environment: PB_N (Celery's no-op tasks, 20000), BENCH_TASKS / BENCH_TASKS_LARGE (Tablao's throughput runs).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHES = ["tests/bench/bench_farm_efficiency.py", "tests/bench/bench_farm_throughput.py"]

NOOP = re.compile(r"RESULT celery prefork c=2 [^:]*: noop throughput (\d+) tasks/s")
LATENCY = re.compile(r"RESULT celery prefork c=2 [^:]*: idle enqueue->start latency median ([\d.]+) ms")
SHELL = re.compile(r"RESULT celery prefork c=4 [^:]*: bash -c 'sleep 0.05' x\d+ efficiency ([\d.]+)%")
SCRIPT = re.compile(
    r"RESULT celery prefork c=4 [^:]*: script x\d+ command-time efficiency ([\d.]+)% nominal efficiency ([\d.]+)%"
)


def celery(log: Path) -> dict[str, float]:
    """Celery's best figures of one peerbench run (the better prefetch setting of each)."""
    env = {**os.environ, "PB_ONLY": "noop sh script", "PB_REUSE_VENV": "1", "PB_SHELL_SCRIPT": shell_script()}
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "peerbench.sh")], env=env, capture_output=True, text=True, check=False
    )
    log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        sys.exit(f"peerbench.sh failed ({proc.returncode}); see {log}")
    try:
        return parse_celery(proc.stdout)
    except ValueError as exc:
        sys.exit(f"{exc}; see {log}")


def parse_celery(text: str) -> dict[str, float]:
    """Celery's best figures from peerbench.sh's RESULT lines (the better prefetch setting of each)."""
    found = {
        name: pattern.findall(text)
        for name, pattern in (
            ("no-op", NOOP),
            ("latency", LATENCY),
            ("script efficiency", SCRIPT),
            ("bash efficiency", SHELL),
        )
    }
    if missing := [name for name, figures in found.items() if not figures]:
        raise ValueError(f"peerbench.sh printed no Celery {', '.join(missing)} figure")
    script = found["script efficiency"]
    return {
        "noop_tasks_per_s": max(float(x) for x in found["no-op"]),
        "latency_p50_ms": min(float(x) for x in found["latency"]),
        "efficiency": max(float(x) for x, _ in script) / 100,
        "efficiency_nominal": max(float(x) for _, x in script) / 100,
        "efficiency_sleep_only": max(float(x) for x in found["bash efficiency"]) / 100,
    }


def shell_script() -> str:
    """The efficiency benchmark's task script, with `{out}` and `{frame}` left for peerbench.sh to fill in."""
    if str(ROOT) not in sys.path:  # run as a script, its own folder comes first
        sys.path.insert(0, str(ROOT))
    from tests.bench.bench_farm_efficiency import SCRIPT as TEMPLATE

    return TEMPLATE.replace("{{frame}}", "{frame}")


def tablao(log: Path) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w+", suffix=".jsonl", delete=False) as results:
        path = Path(results.name)
    env = {**os.environ, "TABLAO_BENCH_RESULTS": str(path)}
    cmd = [sys.executable, "-m", "pytest", "-m", "bench", "-s", "-q", "-p", "no:randomly", *BENCHES]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    log.write_text(proc.stdout + proc.stderr)
    figures = {(row := json.loads(line))["name"]: float(row["value"]) for line in path.read_text().splitlines()}
    path.unlink()
    if proc.returncode != 0:
        sys.exit(f"Tablao's benchmarks failed ({proc.returncode}); see {log}")
    return figures


def report(round_no: int, t: dict[str, float], c: dict[str, float]) -> None:
    n = os.environ.get("BENCH_TASKS", "20000")
    noop = t.get(f"noop_{n}_tasks_per_s", float("nan"))
    rows = [
        ("efficiency, 1,000 x the same bash script on 4: command time / span", t["efficiency"], c["efficiency"],
         f"difference {t['efficiency'] - c['efficiency']:+.3f}",
         t["efficiency"] >= 0.95 and t["efficiency"] >= c["efficiency"] + 0.05),
        ("  the same runs: 50 ms per task / wall from the submit", t["efficiency_nominal"],
         c["efficiency_nominal"], f"difference {t['efficiency_nominal'] - c['efficiency_nominal']:+.3f}",
         t["efficiency_nominal"] >= 0.95 and t["efficiency_nominal"] >= c["efficiency_nominal"] + 0.05),
        ("no-op dispatch, tasks/s (Celery prefork c=2)", noop, c["noop_tasks_per_s"],
         f"ratio {noop / c['noop_tasks_per_s']:.2f}", noop >= 2 * c["noop_tasks_per_s"]),
        ("idle: submit -> start p50, ms (Celery: enqueue)", t["latency_from_request_p50_ms"], c["latency_p50_ms"],
         f"ratio {t['latency_from_request_p50_ms'] / c['latency_p50_ms']:.2f}",
         t["latency_from_request_p50_ms"] <= c["latency_p50_ms"]),
    ]  # fmt: skip
    paced = t.get(f"paced_150ms_{n}_ask_p99_ms")
    print(f"\nround {round_no}: measure | Tablao | Celery | comparison | goal met")
    for name, ours, theirs, comparison, met in rows:
        print(f"  {name} | {ours:.3f} | {theirs:.3f} | {comparison} | {'yes' if met else 'no'}")
    if paced is not None:
        verdict = "yes" if paced < 50 else "no"
        print(f"  paced 150 ms tasks: ask for a task p99, ms | {paced:.1f} | - | goal < 50 | {verdict}")
    large = os.environ.get("BENCH_TASKS_LARGE")
    if large and f"noop_{large}_tasks_per_s" in t:
        ratio = t[f"noop_{large}_tasks_per_s"] / noop
        # the goal is that a big job does not slow dispatch down; above 1.1 the smaller run was the slow one
        verdict = "yes" if 0.9 <= ratio <= 1.1 else "no (the smaller run was slow)" if ratio > 1.1 else "no"
        print(f"  no-op dispatch at {large} / at {n} tasks | {ratio:.2f} | - | within 10 % | {verdict}")
    print(f"  gap between tasks p50 {t['gap_p50_ms']:.1f} ms; from the submit's answer p50 "
          f"{t['latency_from_answer_p50_ms']:.1f} ms; Celery's plain bash -c 'sleep 0.05' (nominal, as compared "
          f"before 2026-12-04) {c['efficiency_sleep_only']:.3f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="Celery then Tablao, this many times")
    parser.add_argument("--logs", type=Path, default=Path(tempfile.gettempdir()) / "tablao-bench-peers")
    args = parser.parse_args()
    args.logs.mkdir(parents=True, exist_ok=True)
    print(f"logs in {args.logs}; the machine's load: {os.getloadavg()}", flush=True)
    for r in range(1, args.rounds + 1):
        c = celery(args.logs / f"celery-{r}.log")
        t = tablao(args.logs / f"tablao-{r}.log")
        report(r, t, c)


if __name__ == "__main__":
    main()
