"""Cold-start cost of each Lambda entry point the CloudFormation template names.

For every module the template's ``Handler`` values name, starts ROUNDS fresh Python
processes that import it and report the import's wall time and the process's peak
resident memory (``VmHWM`` of /proc/self/status; ``ru_maxrss`` would carry the
forking parent's peak across exec) after the import; a bare interpreter is measured the same way as
the baseline. Prints a table of medians, and which heavy modules the import loaded.

Usage: python bench/lambda_imports.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

from strangler.aws.template import FUNCTIONS

HEAVY = ("boto3", "botocore", "requests", "sqlalchemy", "flask", "UnleashClient")
PROBE = """
import json, sys, time
t0 = time.perf_counter()
if sys.argv[1]:
    __import__(sys.argv[1])
elapsed = time.perf_counter() - t0
heavy = [m for m in sys.argv[2:] if m in sys.modules]
with open("/proc/self/status") as status:
    kib = int(next(line for line in status if line.startswith("VmHWM:")).split()[1])
print(json.dumps({"s": elapsed, "kib": kib,
                  "heavy": heavy, "asl": "strangler.instant.asl.executor" in sys.modules}))
"""


def _entry_modules() -> list[str]:
    return sorted({spec.handler.rsplit(".", 1)[0] for spec in FUNCTIONS.values()})


def _measure(module: str, rounds: int) -> tuple[float, float, list[str], bool]:
    runs = []
    for _ in range(rounds):
        out = subprocess.run(
            [sys.executable, "-c", PROBE, module, *HEAVY],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        runs.append(json.loads(out))
    seconds = statistics.median(run["s"] for run in runs)
    mib = statistics.median(run["kib"] for run in runs) / 1024
    return seconds, mib, runs[-1]["heavy"], runs[-1]["asl"]


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    rounds = parser.parse_args().rounds
    print(f"{'entry module':<36} {'import ms':>10} {'peak RSS MiB':>13}  heavy modules loaded")
    for module in ["", *_entry_modules()]:
        seconds, mib, heavy, asl = _measure(module, rounds)
        loaded = ", ".join(heavy + (["asl executor"] if asl else [])) or "-"
        print(f"{module or '(bare python)':<36} {seconds * 1000:>10.1f} {mib:>11.1f}  {loaded}")
    print(f"medians of {rounds} fresh processes each")


if __name__ == "__main__":
    main()
