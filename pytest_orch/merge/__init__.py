"""Bring CI jobs' work back: their states, files and reports merged (--orch-merge, --orch-restore)."""
