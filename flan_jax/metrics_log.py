"""Where training metrics go: MODEL_DIR/metrics.jsonl, TensorBoard events, a progress bar.

Only process 0 writes; every process may call these methods. Files go through tf.io.gfile so
MODEL_DIR may be a gs:// bucket; object stores cannot append, so there metrics.jsonl is
rewritten whole at each log step (small: one line per logged step).
"""
from __future__ import annotations

import json
import os
import sys
from typing import Mapping

import jax
import tensorflow as tf
import tqdm

METRICS_FILE = "metrics.jsonl"


class MetricsLog:
    """One JSON object per logged step, plus TensorBoard scalars under MODEL_DIR/train."""

    def __init__(self, model_dir: str, total_steps: int, initial_step: int,
                 progress_bar: bool | None = None):
        self.is_writer = jax.process_index() == 0
        self.path = os.path.join(model_dir, METRICS_FILE)
        self.tensorboard_dir = os.path.join(model_dir, "train")
        self._file = self._summary_writer = self._bar = None
        if not self.is_writer:
            return
        tf.io.gfile.makedirs(model_dir)
        self._appendable = "://" not in self.path
        if self._appendable:
            self._file = open(self.path, "a", encoding="utf-8")
        else:  # keep earlier records of a resumed run, rewrite on each write
            self._records = (tf.io.gfile.GFile(self.path).read().splitlines()
                             if tf.io.gfile.exists(self.path) else [])
        self._summary_writer = tf.summary.create_file_writer(self.tensorboard_dir)
        if progress_bar is None:
            progress_bar = sys.stderr.isatty()
        if progress_bar:
            self._bar = tqdm.tqdm(total=total_steps, initial=initial_step, unit="step",
                                  dynamic_ncols=True)

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        if not self.is_writer:
            return
        line = json.dumps({"step": int(step), **{k: float(v) for k, v in metrics.items()}})
        if self._appendable:
            self._file.write(line + "\n")
            self._file.flush()
        else:
            self._records.append(line)
            # Write then rename: a reader (or a preemption) never sees a half-written file.
            staging = self.path + ".tmp"
            with tf.io.gfile.GFile(staging, "w") as f:
                f.write("\n".join(self._records) + "\n")
            tf.io.gfile.rename(staging, self.path, overwrite=True)
        with self._summary_writer.as_default(step=step):
            for name, value in metrics.items():
                tf.summary.scalar(name, value)
        self._summary_writer.flush()
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{metrics['loss']:.4f}",
                                  tok_s=f"{metrics['tokens_per_s']:.0f}", refresh=False)

    def advance(self, step: int) -> None:
        """Moves the progress bar to `step` (cheap; call every step)."""
        if self._bar is not None:
            self._bar.update(step - self._bar.n)

    def message(self, text: str) -> None:
        """A line for the user that does not break the progress bar."""
        if not self.is_writer:
            return
        if self._bar is not None:
            self._bar.write(text)
        else:
            print(text, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        if self._file is not None:
            self._file.close()
        if self._summary_writer is not None:
            self._summary_writer.close()


def read_metrics(model_dir: str) -> list[dict]:
    """All records of MODEL_DIR/metrics.jsonl, oldest first."""
    with tf.io.gfile.GFile(os.path.join(model_dir, METRICS_FILE)) as f:
        return [json.loads(line) for line in f if line.strip()]
