"""Release check (after lonboard): a wheel built from a clean copy of the tracked files carries
every front-end bundle and the vendored scripts an offline page needs."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_contains_the_built_javascript(tmp_path: pathlib.Path) -> None:
    # The committed tree, as a clean clone has it (work-tree edits may be half done).
    src = tmp_path / "src"
    src.mkdir()
    archive = subprocess.run(
        ["git", "archive", "HEAD"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    assert not (src / "python" / "layerscope" / "static").exists(), (
        "bundles must be built, not tracked"
    )
    # Reuse the installed npm packages (the build itself still runs, from a clean static/).
    (src / "node_modules").symlink_to(ROOT / "node_modules")
    out = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(src)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = out.glob("layerscope-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    entries = sorted(p.stem for p in (src / "js" / "entries").glob("*.ts"))
    assert entries, "no front-end entries found"
    for entry in entries:
        assert f"layerscope/static/{entry}.js" in names, (
            f"bundle {entry}.js is missing from {wheel.name}"
        )
    for vendored in ("require.js", "embed-amd.js", "offline-page.js"):
        assert f"layerscope/static/vendor/{vendored}" in names
    assert "layerscope/__init__.py" in names
    version = (ROOT / "package.json").read_text().split('"version": "')[1].split('"')[0]
    assert wheel.name.startswith(f"layerscope-{version}-"), "the wheel's version is package.json's"
