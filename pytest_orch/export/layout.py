"""The layout of one CI job's artifact, shared by the pack step, --orch-restore and --orch-merge.

    <dir>/orch-job.json   {"schema", "job", "files": [paths under files/], "deleted": [paths]}
    <dir>/reports/        the job's reports/ (run.json, junit.xml, ...)
    <dir>/state/state.db  a consistent copy of the job's .orch/state.db
    <dir>/files/<path>    every file the plan's tasks have written so far, as the job left it

No name in it starts with a dot, so an upload step needs no option to keep hidden files (the files
under files/ may: ``.github/workflows/ci.yml``).
"""

from __future__ import annotations

MANIFEST = "orch-job.json"
REPORTS = "reports"
STATE = "state/state.db"
FILES = "files"
SCHEMA = 1
