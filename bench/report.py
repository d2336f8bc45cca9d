"""Print bench/results.json as the Markdown table bench/README.md shows.

    .venv/bin/python -m bench.report [bench/results.json]
"""
import json
import os
import sys

from bench.stats import Results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    path = argv[0] if argv else os.path.join(ROOT, "bench", "results.json")
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    results = Results()
    results.figures = data["figures"]
    print(f"{data['mode']} run, {data['generated_at']}, {data['seconds']:.0f} s, "
          f"{data['machine']['cpus']} CPUs, commit {data.get('commit')}\n")
    print(results.markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
