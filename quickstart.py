#!/usr/bin/env python3
"""The two quickstart commands: `python3 quickstart.py run` and `python3 quickstart.py test`.

Each creates (or refreshes, when pyproject.toml changed) the virtualenv in .venv first.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".installed"


def ensure_venv() -> None:
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        print("Creating the virtualenv in .venv ...", flush=True)
        venv.create(VENV, with_pip=True)
    print("Installing the tracker and its test dependencies ...", flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-e", f"{ROOT}[test]"], check=True, cwd=ROOT)
    STAMP.write_text(wanted)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "test"):
        print("usage: python3 quickstart.py run [serve options] | test [pytest options]", file=sys.stderr)
        return 2
    ensure_venv()
    tracker = str(BIN / "tracker")
    if argv[0] == "run":
        subprocess.run([tracker, "db", "upgrade"], check=True, cwd=ROOT)
        os.chdir(ROOT)
        os.execv(tracker, [tracker, "serve", *argv[1:]])
    result = subprocess.run([str(BIN / "python"), "-m", "pytest", *argv[1:]], cwd=ROOT)
    return result.returncode


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except subprocess.CalledProcessError as exc:
        print(f"Failed: {' '.join(map(str, exc.cmd))} exited with {exc.returncode}.", file=sys.stderr)
        sys.exit(1)
