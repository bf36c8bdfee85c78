"""What registering the contract kit's pytest plugin costs at pytest start-up when a run does not use it.

Times, in fresh interpreters, ``import pytest`` alone, ``import pytest`` plus
the registered plugin module (``connector_core.testing.pytest_plugin``), and
``import pytest`` plus the whole kit (what the plugin cost when it imported
the kit eagerly); prints the medians and the ratios to ``import pytest``.
Each interpreter is started once per measurement, alternating the three, so
a busy machine slows them alike.

    .venv/bin/python bench/pytest_plugin_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

CASES = {
    "pytest": "import pytest",
    "pytest + plugin": "import pytest, connector_core.testing.pytest_plugin",
    "pytest + kit": "import pytest, connector_core.testing.suite",
}


def once(code: str) -> float:
    """Seconds for one fresh interpreter to run ``code`` and exit."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="interpreters per case (default 15)")
    runs = parser.parse_args().runs
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for code in CASES.values():
        once(code)  # warm the file cache and the .pyc files
    for _ in range(runs):
        for name, code in CASES.items():
            times[name].append(once(code))
    base = statistics.median(times["pytest"])
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:16s} median {median * 1000:7.1f} ms   ratio to pytest alone {median / base:5.3f}")


if __name__ == "__main__":
    main()
