"""An offline stand-in for an LLM command-line tool (`gemini -p`, `llm`, `claude -p`, `ollama run`).

Prints a short answer built from the prompt, so the example plan runs without a network or a key.
With FAKE_LLM_QUOTA_FIRST=N it first answers N times with a quota error on stderr, as a real tool
does when it is rate limited, to show pytest-orch backing off.
"""

import json
import os
import re
import sys
from pathlib import Path

counter = Path(".fake_llm_calls")
calls = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(calls))
if calls <= int(os.environ.get("FAKE_LLM_QUOTA_FIRST", "0")):
    print("Error: 429 RESOURCE_EXHAUSTED: quota exceeded, retry later", file=sys.stderr)
    sys.exit(1)

args = sys.argv[1:]
prompt = sys.stdin.read() if "--stdin" in args else args[args.index("-p") + 1]
files = re.findall(r"^== (\S+)", prompt, flags=re.M)
functions = re.findall(r"^def (\w+)", prompt, flags=re.M)
if "JSON" in prompt:
    print(json.dumps({"modules": files, "functions": functions}, indent=2))
else:
    print("# Services\n")
    for path in files:
        print(f"- `{path}`")
    print(f"\n{len(functions)} public functions: {', '.join(functions)}.")
