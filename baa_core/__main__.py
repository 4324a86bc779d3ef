"""``python -m baa_core``: the CLI. An interrupt ends in one line at any moment, also while torch is still
importing (``main`` catches it only once it runs)."""
import sys

try:
    from .cli import main

    code = main()
except KeyboardInterrupt:
    print("error: interrupted", file=sys.stderr)
    code = 130
raise SystemExit(code)
