"""The plan as CI jobs: --orch-export github|gitlab, and the pack step each exported job ends with."""
