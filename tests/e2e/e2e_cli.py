"""The installed `cognito-backup`, run as a separate process, as an operator runs it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("cognito-backup", path=str(Path(sys.executable).parent))
    assert exe, "the cognito-backup entry point is installed"
    return subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=timeout)
