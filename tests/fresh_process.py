"""Run Python in a fresh process: device counts are fixed when JAX starts.

Tests of several CPU devices, of the command line's own device setup and of
several processes need a new interpreter; these helpers give it the suite's
environment with the changes a test asks for, run it and read back the one
``RESULT {json}`` line its script prints.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fresh_env(changes: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """This process's environment for a fresh JAX process on the CPU.

    No compilation cache, the repository on ``PYTHONPATH``, and ``changes``
    applied on top (a value of ``None`` removes the variable).
    """
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "JAXRL_NO_COMPILE_CACHE": "1"}
    env["PYTHONPATH"] = REPO + os.pathsep + os.environ.get("PYTHONPATH", "")
    for name, value in (changes or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run_python(
    args: Sequence[str], env: Mapping[str, str], timeout: float = 240
) -> subprocess.CompletedProcess:
    """``python *args`` with ``env``; asserts it exits 0 (its stderr if not)."""
    proc = subprocess.run(
        [sys.executable, *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def result(proc: subprocess.CompletedProcess) -> Any:
    """The JSON of the last ``RESULT {json}`` line on ``proc``'s stdout."""
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])
