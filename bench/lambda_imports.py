"""Cold-start cost of each Lambda entry point the CloudFormation template names.

For every module the template's ``Handler`` values name, starts fresh Python processes
that import it and report the import's wall time and the process's peak resident memory
(``VmHWM`` of /proc/self/status; ``ru_maxrss`` would carry the forking parent's peak
across exec) after the import; a bare interpreter is measured the same way as the
baseline. With ``--before DIR`` (a checkout of an older commit, e.g.
``git archive <commit> strangler | tar -x -C DIR``) the same entries are measured from
that tree too, rounds interleaved, and the table gives both medians and their ratio.

Usage: python bench/lambda_imports.py [--rounds N] [--before DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from strangler.aws.template import FUNCTIONS

HERE = Path(__file__).resolve().parent.parent
HEAVY = ("boto3", "botocore", "requests", "sqlalchemy", "flask", "UnleashClient")
PROBE = """
import json, sys, time
t0 = time.perf_counter()
if sys.argv[1]:
    __import__(sys.argv[1])
elapsed = time.perf_counter() - t0
with open("/proc/self/status") as status:
    kib = int(next(line for line in status if line.startswith("VmHWM:")).split()[1])
heavy = [m for m in sys.argv[2:] if m in sys.modules]
if "strangler.instant.asl.executor" in sys.modules:
    heavy.append("asl-executor")
print(json.dumps({"s": elapsed, "kib": kib, "heavy": heavy}))
"""


def _entry_modules() -> list[str]:
    return sorted({spec.handler.rsplit(".", 1)[0] for spec in FUNCTIONS.values()})


def _once(module: str, tree: Path) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, module, *HEAVY],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=env,
        cwd=tree,
    ).stdout
    result: dict[str, object] = json.loads(out)
    return result


def _summary(runs: list[dict[str, object]]) -> tuple[float, float, str]:
    ms = statistics.median(float(str(run["s"])) for run in runs) * 1000
    mib = statistics.median(float(str(run["kib"])) for run in runs) / 1024
    heavy = runs[-1]["heavy"]
    return ms, mib, ", ".join(heavy) if isinstance(heavy, list) and heavy else "-"


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--before", type=Path, help="an older checkout to compare against")
    args = parser.parse_args()
    trees = {"now": HERE, **({"before": args.before.resolve()} if args.before else {})}
    modules = ["", *_entry_modules()]
    runs: dict[tuple[str, str], list[dict[str, object]]] = {}
    for _ in range(args.rounds):  # interleaved, so that load from elsewhere hits both alike
        for module in modules:
            for label, tree in trees.items():
                runs.setdefault((module, label), []).append(_once(module, tree))
    print(f"{'entry module':<30} {'tree':<7} {'import ms':>10} {'peak RSS MiB':>13}  heavy loaded")
    for module in modules:
        for label in trees:
            ms, mib, heavy = _summary(runs[module, label])
            print(f"{module or '(bare python)':<30} {label:<7} {ms:>10.1f} {mib:>13.1f}  {heavy}")
        if module and "before" in trees:
            now_ms, now_mib, _ = _summary(runs[module, "now"])
            old_ms, old_mib, _ = _summary(runs[module, "before"])
            print(f"{'':<30} {'ratio':<7} {now_ms / old_ms:>10.2f} {now_mib / old_mib:>13.2f}")
    print(f"medians of {args.rounds} fresh processes each, trees interleaved")


if __name__ == "__main__":
    main()
