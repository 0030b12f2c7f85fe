"""Run benchmark suites by name: `python -m benchmarks routing sync` or `python -m benchmarks all`."""

from __future__ import annotations

import importlib
import sys

# Each suite is a module benchmarks/<name>.py with a `main() -> None` that writes its own
# section of docs/benchmarks.md through benchmarks.report.write_section.
SUITES = ["core", "orders", "routing", "sync", "bridge", "mobile", "adjustments"]


def run(names: list[str]) -> int:
    """Run the named suites in order; return a process exit code."""
    if not names or names == ["all"]:
        names = SUITES
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        print(
            f"unknown benchmark suite(s): {', '.join(unknown)}; known: {', '.join(SUITES)}", file=sys.stderr
        )
        return 2
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"== benchmark suite: {name}", flush=True)
        module.main()
    return 0


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1:]))
