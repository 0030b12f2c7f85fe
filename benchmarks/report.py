"""Write one suite's section of docs/benchmarks.md, keeping the other suites' sections."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import subprocess
from pathlib import Path

REPORT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = (
    "# Benchmarks\n\n"
    "Written by `make bench` (or `make bench-<suite>`); each suite rewrites only its own section.\n"
    "Every section names the machine it ran on and measures its peers in the same run.\n"
)


def machine_description() -> str:
    """One line naming the CPU, core count, memory and Python of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gib = int(line.split()[1]) / 1024 / 1024
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = "unknown"
    load = os.getloadavg()[0]
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem_gib:.0f} GiB RAM, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}, commit {commit or 'unknown'}, "
        f"1-minute load average {load:.2f} when the suite started"
    )


def write_section(suite: str, title: str, body_markdown: str) -> Path:
    """Replace (or append) the section for `suite` in docs/benchmarks.md and return the path."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"<!-- bench:{suite} -->\n## {title}\n\n"
        f"Run {stamp} on: {machine_description()}\n\n{body_markdown.strip()}\n<!-- /bench:{suite} -->\n"
    )
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    text = REPORT.read_text() if REPORT.exists() else HEADER
    pattern = re.compile(rf"<!-- bench:{re.escape(suite)} -->.*?<!-- /bench:{re.escape(suite)} -->\n?", re.S)
    text = (
        pattern.sub(lambda _m: section, text)
        if pattern.search(text)
        else text.rstrip("\n") + "\n\n" + section
    )
    REPORT.write_text(text)
    return REPORT
