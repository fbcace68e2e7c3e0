"""What `import tasks` costs: the libraries it needs, then registering every task.

Each measurement runs in a fresh interpreter (nothing cached in sys.modules), three times;
prints one JSON line: seconds to import seqio + t5.data (TensorFlow, which any launch loads),
seconds to import tasks after them (registering FLAN 2021 and mini-FLAN), wall clock and
CPU time of the process (registration is single-threaded Python, so on a loaded machine its
CPU time is close to what the wall clock would be at rest), the task and mixture counts, and
the load average.

    .venv/bin/python tools/import_cost.py
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

_PROBE = """
import json, time
t0 = time.perf_counter()
import seqio, t5.data  # noqa: F401
t1, c1 = time.perf_counter(), time.process_time()
import tasks  # noqa: F401
t2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({"libraries_s": t1 - t0, "tasks_s": t2 - t1, "tasks_cpu_s": c2 - c1,
                  "tasks": len(seqio.TaskRegistry.names()),
                  "mixtures": len(seqio.MixtureRegistry.names())}))
"""


def main(runs: int = 3) -> int:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    load_before = os.getloadavg()[0]
    results = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", _PROBE], cwd=root, env=env, check=True,
                             capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    print(json.dumps({
        "libraries_s_median": round(statistics.median(r["libraries_s"] for r in results), 2),
        "register_tasks_s_median": round(statistics.median(r["tasks_s"] for r in results), 2),
        "register_tasks_s_runs": [round(r["tasks_s"], 2) for r in results],
        "register_tasks_cpu_s_median": round(statistics.median(r["tasks_cpu_s"] for r in results),
                                             2),
        "tasks": results[-1]["tasks"], "mixtures": results[-1]["mixtures"],
        "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
