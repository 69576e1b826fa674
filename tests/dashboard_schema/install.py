"""The harness's npm packages (package-lock.json: @grafana/schema, typescript), installed
with ``npm ci`` once per lock file into .cache/dashboard-schema/<hash of the lock>/, outside
the repository's tracked files. Concurrent test runs wait for one another's install."""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

HARNESS = Path(__file__).resolve().parent
CACHE = HARNESS.parent.parent / ".cache" / "dashboard-schema"
MANIFESTS = ("package.json", "package-lock.json")
INSTALLED = ".installed"


def installed_packages(npm: str) -> Path:
    """The directory whose node_modules holds the locked packages, installing them if missing."""
    digest = hashlib.sha256()
    for name in MANIFESTS:
        digest.update((HARNESS / name).read_bytes())
    target = CACHE / digest.hexdigest()[:16]
    if (target / INSTALLED).exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / INSTALLED).exists():
            _npm_ci(npm, target)
    return target


def _npm_ci(npm: str, target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(dir=CACHE, prefix="staging-"))
    try:
        for name in MANIFESTS:
            shutil.copyfile(HARNESS / name, staging / name)
        done = subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=staging,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"npm ci in {staging} failed:\n{done.stdout}{done.stderr}")
        (staging / INSTALLED).touch()
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
