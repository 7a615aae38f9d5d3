"""File-mode rollout reads JSON without loading the Unleash SDK."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

RUNNER = """
import json, sys
from strangler.cli.main import main
main(["rollout", "show"], standalone_mode=False)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "UnleashClient")))
"""


def test_rollout_show_in_file_mode_does_not_import_unleash_client(
    flag_file: Path, tmp_path: Path
) -> None:
    """`strangler rollout show` on a flag file prints the rollout with UnleashClient unloaded."""
    env = {
        **os.environ,
        "STRANGLER_FLAGS_FILE": str(flag_file),
        "STRANGLER_DATA_DIR": str(tmp_path / "data"),
    }
    env.pop("STRANGLER_UNLEASH_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", RUNNER],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    lines = done.stdout.splitlines()
    assert (lines[1].split(" (")[0], json.loads(lines[-1])) == ("mode      embedded", [])
