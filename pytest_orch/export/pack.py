"""``python -m pytest_orch.export.pack DIR``: the last step of every exported CI job.

Copies the job's reports, a consistent snapshot of ``.orch/state.db`` and every file the plan's
tasks have written so far (the state's ``written_paths``: this job's work and what it carried in)
into DIR, laid out as export/layout.py says, for the upload step. It runs after a failed job too:
the merge then reports what the job did. It never fails the job by itself for a missing report.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
from pathlib import Path

from pytest_orch.export import layout
from pytest_orch.state import DB_NAME, STATE_DIR


def pack(root: Path, out: Path, *, reports: Path | None = None, job: str | None = None) -> dict[str, object]:
    """Write the artifact of the job that ran in ``root`` to ``out``; return its manifest."""
    root, out = root.resolve(), out.resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    reports = reports if reports is not None else root / "reports"
    if reports.is_dir():
        shutil.copytree(reports, out / layout.REPORTS)
    db = root / STATE_DIR / DB_NAME
    files: list[str] = []
    deleted: list[str] = []
    if db.exists():
        target = out / layout.STATE
        target.parent.mkdir(parents=True)
        source = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)  # the WAL's commits included: the copy is one consistent database
            written = dict(copy.execute("SELECT path, sha FROM written_paths ORDER BY path").fetchall())
        finally:
            copy.close()
            source.close()
        for path, sha in written.items():
            src = root / path
            if sha is None:
                deleted.append(path)
            elif src.is_file() and not _outside(root, src):
                dest = out / layout.FILES / path
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest)
                files.append(path)
    manifest = {"schema": layout.SCHEMA, "job": job or out.name, "files": files, "deleted": deleted,
                "state": db.exists()}
    (out / layout.MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def _outside(root: Path, path: Path) -> bool:
    return root not in path.resolve().parents


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_orch.export.pack", description=__doc__.split("\n")[0])
    parser.add_argument("dir", type=Path, help="where to write the artifact (its name is the job's)")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the project (default: here)")
    parser.add_argument("--reports", type=Path, help="the reports folder (default: ROOT/reports)")
    args = parser.parse_args(argv)
    manifest = pack(args.root, args.dir, reports=args.reports)
    print(f"packed {manifest['job']}: {len(manifest['files'])} files, "  # type: ignore[arg-type]
          f"state {'yes' if manifest['state'] else 'none'} -> {args.dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
