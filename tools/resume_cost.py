r"""What resuming the data pipeline costs at a given step: saved tf.data state vs replay.

    python tools/resume_cost.py --steps 100 10000 100000          (or: make resume-cost)

The input pipeline alone (no model, no training), as flan_jax.train runs it: mini-FLAN's
`make run` mixture and batch by default. One iterator reads batches up to each step in
--steps; there its position is saved as a checkpoint saves it (BatchIterator.state() and
pipeline_files(), written to a directory). Then, per step, two fresh iterators resume there:
  new:    BatchIterator.restore(state, files) reads the saved tf.data iterator state;
  replay: the same state without its files (a checkpoint written before they existed)
          rebuilds the pipeline and skips every batch already read.
Each is timed from building the iterator to the first batch after the restore, and that
batch is checked against the one the uninterrupted iterator read next (bit-exact, or the
tool fails). Replay is timed only up to --replay-up-to (it re-reads everything, so it costs
about as long as reading up to the step did); beyond it the row says "not run", and
--replay-up-to 0 times the saved state alone.
--replay-only times the replay path alone, from the JSON state (no reading up to the step, so
no batch check): for a step too far to read up to and then replay in one sitting.

One JSON line per step (step, seconds, state bytes, save seconds), then a table with the load
average beside it: on a shared machine the figures scale with the load.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from flan_jax import data  # noqa: E402  (after the path above)
import tasks  # noqa: E402, F401  (registers mini-FLAN)

DEFAULT_MIXTURE = "mini_flan_heldout_entailment_train"  # gin_configs/local/mini_cpu.gin


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 10_000, 100_000],
                        help="steps (batches read) at which to save and resume")
    parser.add_argument("--replay-up-to", type=int, default=None,
                        help="time the replay path only at steps up to this one (default: all)")
    parser.add_argument("--replay-only", action="store_true",
                        help="time only the replay path, from the JSON state alone (nothing is "
                             "read up to the step first, so the batch is not checked)")
    parser.add_argument("--mixture", default=DEFAULT_MIXTURE)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--inputs", type=int, default=256, help="inputs length in tokens")
    parser.add_argument("--targets", type=int, default=64, help="targets length in tokens")
    parser.add_argument("--no-shuffle", action="store_true",
                        help="read unshuffled (no shuffle buffers in the saved state)")
    args = parser.parse_args(argv)
    if any(s < 1 for s in args.steps):
        parser.error(f"--steps must be positive step numbers, got {args.steps}.")
    args.steps = sorted(set(args.steps))
    return args


def _same(a: data.Batch, b: data.Batch) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _timed_resume(config: data.DatasetConfig, state: dict, pipeline_dir: str | None
                  ) -> tuple[float, data.Batch]:
    """Seconds from building an iterator to its first batch after restoring `state`."""
    started = time.perf_counter()
    iterator = data.BatchIterator(config)
    iterator.restore(state, pipeline_dir)
    batch = next(iterator)
    return time.perf_counter() - started, batch


def _replay_only(config: data.DatasetConfig, steps: list[int]) -> list[dict]:
    """The replay path alone, from the JSON state of a checkpoint at each step."""
    rows = []
    for step in steps:
        state = {**data.BatchIterator(config).state(), "batches_consumed": step}
        seconds, _ = _timed_resume(config, state, None)
        rows.append({"step": step, "resume_replay_s": round(seconds, 2)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _read_save_resume(config: data.DatasetConfig, steps: list[int], replay_up_to: int,
                      scratch: str) -> list[dict]:
    """Reads up to each step, saves there, and times both ways of resuming (module doc)."""
    rows = []
    reader = data.BatchIterator(config)
    read_started = time.perf_counter()
    for step in steps:
        while reader.batches_consumed < step:
            next(reader)
        read_seconds = time.perf_counter() - read_started
        save_started = time.perf_counter()
        state, files = reader.state(), reader.pipeline_files()
        save_seconds = time.perf_counter() - save_started
        pipeline_dir = os.path.join(scratch, str(step))
        os.makedirs(pipeline_dir)
        for name, contents in files.items():
            with open(os.path.join(pipeline_dir, name), "wb") as f:
                f.write(contents)
        expected = next(reader)  # the batch a run that never stopped reads next
        row = {"step": step, "read_from_start_s": round(read_seconds, 2),
               "state_bytes": sum(len(c) for c in files.values()),
               "save_s": round(save_seconds, 3)}
        seconds, batch = _timed_resume(config, state, pipeline_dir)
        if not _same(batch, expected):
            raise SystemExit(f"resume from the saved state at step {step} gave another "
                             "batch than the uninterrupted run")
        row["resume_saved_state_s"] = round(seconds, 2)
        if step <= replay_up_to:
            seconds, batch = _timed_resume(config, state, None)
            if not _same(batch, expected):
                raise SystemExit(f"replay to step {step} gave another batch than the "
                                 "uninterrupted run")
            row["resume_replay_s"] = round(seconds, 2)
        print(json.dumps(row), flush=True)
        rows.append(row)
        read_started += time.perf_counter() - save_started  # resumes are not reading time
    return rows


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    config = data.DatasetConfig(args.mixture, {"inputs": args.inputs, "targets": args.targets},
                                batch_size=args.batch_size, shuffle=not args.no_shuffle,
                                seed=0)
    load_before = os.getloadavg()
    if args.replay_only:
        rows = _replay_only(config, args.steps)
    else:
        replay_up_to = args.replay_up_to if args.replay_up_to is not None else max(args.steps)
        scratch = tempfile.mkdtemp(prefix="flan_jax_resume_cost_")
        try:
            rows = _read_save_resume(config, args.steps, replay_up_to, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    load_after = os.getloadavg()
    print(f"\n{args.mixture}{', unshuffled' if args.no_shuffle else ''}, "
          f"batch {args.batch_size} x ({args.inputs}, {args.targets}), "
          f"{os.cpu_count()} CPUs, load average (1, 5, 15 min) before "
          f"{', '.join(f'{x:.1f}' for x in load_before)}, after "
          f"{', '.join(f'{x:.1f}' for x in load_after)}")
    print("| step | resume, saved state | resume, replay | saved state | save |")
    print("|---|---|---|---|---|")
    for r in rows:
        saved, replay, size, save = (
            f"{r[k] * scale:.{digits}f} {unit}" if k in r else "not run"
            for k, scale, digits, unit in (("resume_saved_state_s", 1, 2, "s"),
                                           ("resume_replay_s", 1, 2, "s"),
                                           ("state_bytes", 2**-20, 1, "MiB"),
                                           ("save_s", 1, 2, "s")))
        print(f"| {r['step']:,} | {saved} | {replay} | {size} | {save} |")
    return rows


if __name__ == "__main__":
    main()
