"""The Dockerfile passes hadolint; the systemd units pass `systemd-analyze verify`.

There is no container engine here, so the image is checked by its linter. The units are verified
against a throw-away root holding this machine's system units, a stand-in docker.service and
stand-in /usr/bin/docker and /bin/sh (verify checks that executables exist).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ("evoarena.service", "evoarena-health.service", "evoarena-health.timer")
# Keys newer than this machine's systemd (254+): ignored with a warning by older versions.
NEWER_KEYS = re.compile(r"Unknown key '(RestartSteps|RestartMaxDelaySec)' in section \[Service\]")

pytestmark = pytest.mark.timeout(60)


def test_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    result = subprocess.run(
        [str(hadolint), "--failure-threshold", "info", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_has_what_production_needs() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"python:3\.11[\w.-]*@sha256:[0-9a-f]{64}", text), "base pinned by digest"
    deps = text.index("-r /tmp/deps.txt")
    assert deps < text.index("COPY src"), "dependencies are installed before the source"
    assert "--mount=type=cache,target=/root/.cache/pip" in text
    assert 'ENTRYPOINT ["tini", "--", "evoarena"]' in text
    assert "HEALTHCHECK" in text
    assert "/healthz" in text
    runtime = text[text.rindex("FROM ") :]
    assert "pip uninstall --yes pip setuptools" in runtime


def _verify_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    system = root / "usr/lib/systemd/system"
    shutil.copytree("/usr/lib/systemd/system", system, symlinks=True)
    etc = root / "etc/systemd/system"
    etc.mkdir(parents=True)
    (etc / "docker.service").write_text(
        "[Unit]\nDescription=stand-in\n[Service]\nExecStart=/usr/bin/docker\n", encoding="utf-8"
    )
    for exe in ("usr/bin/docker", "bin/sh", "usr/bin/systemctl"):
        path = root / exe
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n", encoding="utf-8")
        path.chmod(0o755)
    for unit in UNITS:
        shutil.copy(ROOT / "deploy" / unit, etc / unit)
    return root


def test_systemd_units_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze is installed by `make test` (package systemd)"
    root = _verify_root(tmp_path)
    result = subprocess.run(
        [analyze, "verify", f"--root={root}", *UNITS],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [ln for ln in (result.stdout + result.stderr).splitlines() if ln.strip()]
    unexpected = [ln for ln in lines if not NEWER_KEYS.search(ln)]
    assert result.returncode == 0, lines
    assert unexpected == []


def test_unit_passes_every_setting_and_limits_the_container() -> None:
    unit = (ROOT / "deploy/evoarena.service").read_text(encoding="utf-8")
    assert "--env-file /etc/evoarena/evoarena.env" in unit
    assert "--log-driver none" in unit
    assert "--memory 2g" in unit
    assert "--pids-limit" in unit
    assert "--pull never" in unit
    assert "RestartPreventExitStatus=2 125 126 127" in unit
    assert "StartLimitBurst=" in unit
    assert "Documentation=" not in unit
