"""The real train() loop on the tiny test task: resume, sharding, preemption, divergence."""
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

import tiny
from flan_jax import checkpointing, metrics_log, optim, train

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


def _losses(model_dir):
    return {r["step"]: r["loss"] for r in metrics_log.read_metrics(str(model_dir))}


def _saved_params(model_dir, step):
    path = os.path.join(str(model_dir), "checkpoints", str(step), "state")
    return ocp.StandardCheckpointer().restore(path)["params"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(6 steps never interrupted, the same run stopped at step 3), checkpoints every 3."""
    base = tmp_path_factory.mktemp("resume")
    train.train(**tiny.train_kwargs(base / "straight", steps=6, save_every=3))
    first = train.train(**tiny.train_kwargs(base / "split", steps=3, save_every=3))
    assert first.final_step == 3
    return base / "straight", base / "split"


def _resume_to_6_and_compare(straight, split):
    resumed = train.train(**tiny.train_kwargs(split, steps=6, save_every=3))
    assert resumed.start_step == 3 and resumed.final_step == 6

    a, b = _losses(straight), _losses(split)
    assert sorted(a) == sorted(b) == [1, 2, 3, 4, 5, 6]
    assert a[6] < a[1], "the loss should fall"
    for step in a:  # bit-for-bit: same data order, same dropout keys, same arithmetic
        assert a[step] == b[step], (step, a[step], b[step])
    jax.tree.map(np.testing.assert_array_equal, _saved_params(straight, 6),
                 _saved_params(split, 6))


REPLAY_MESSAGE = "Resuming the data at batch 3 by replaying it from the start"


def test_resume_gives_identical_metrics_and_params(runs, tmp_path, caplog):
    straight, split = runs[0], tmp_path / "split"
    shutil.copytree(runs[1], split)
    # The data position is this process's saved tf.data iterator, not a batch count to replay.
    pipeline = split / "checkpoints" / "3" / "data" / "process_0-of-1"
    assert sorted(os.listdir(pipeline)) == ["pipeline.data-00000-of-00001", "pipeline.index"]
    with caplog.at_level(logging.INFO):
        _resume_to_6_and_compare(straight, split)
    assert REPLAY_MESSAGE not in caplog.text
    assert (split / "checkpoints" / "6" / "data" / "process_0-of-1" / "pipeline.index").exists()


# The data item's JSON keys before pipeline files existed (flan_jax/data.py at commit 5091aef,
# BatchIterator.state); that version wrote data/metadata only, with Orbax's JsonSave.
OLD_DATA_KEYS = {"batches_consumed", "mixture_or_task_name", "split", "seed", "batch_size",
                 "task_feature_lengths", "process_count", "pack", "prompt_slots"}


def test_a_checkpoint_from_before_pipeline_files_resumes_bit_exactly_by_replay(
        runs, tmp_path, caplog):
    straight, split = runs[0], tmp_path / "split"
    shutil.copytree(runs[1], split)
    item = split / "checkpoints" / "3" / "data"
    shutil.rmtree(item / "process_0-of-1")
    assert set(json.loads((item / "metadata").read_text())) == OLD_DATA_KEYS
    with caplog.at_level(logging.INFO):
        _resume_to_6_and_compare(straight, split)
    assert REPLAY_MESSAGE in caplog.text


def test_without_save_dataset_a_checkpoint_holds_the_count_and_resume_replays(
        runs, tmp_path, caplog):
    straight, split = runs[0], tmp_path / "split"
    train.train(**tiny.train_kwargs(split, steps=3, save_every=3, checkpoint=(
        checkpointing.CheckpointConfig(save_every_steps=3, keep=None, save_dataset=False))))
    item = split / "checkpoints" / "3" / "data"
    assert not [n for n in os.listdir(item) if n.startswith("process_")]  # no pipeline state
    assert (item / "metadata").exists()
    with caplog.at_level(logging.INFO):
        _resume_to_6_and_compare(straight, split)
    assert REPLAY_MESSAGE in caplog.text


def test_one_device_and_eight_sharded_devices_agree(tmp_path):
    """1 device vs 8 fake devices with num_partitions=2, with and without FSDP."""
    script = (
        "import os, sys; sys.path.insert(0, %r)\n"
        "import tiny\nfrom flan_jax import train\nimport jax\n"
        "assert jax.device_count() == 1\n"
        "train.train(**tiny.train_kwargs(sys.argv[1], steps=4))\n" % TESTS_DIR)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "one")], env=env, check=True,
                   capture_output=True, timeout=300)
    train.train(**tiny.train_kwargs(tmp_path / "tp", steps=4, num_partitions=2))
    train.train(**tiny.train_kwargs(tmp_path / "fsdp", steps=4, num_partitions=2,
                                    parameter_sharding=True))
    reference = _losses(tmp_path / "one")
    for name in ("tp", "fsdp"):
        losses = _losses(tmp_path / name)
        assert sorted(losses) == [1, 2, 3, 4]
        # Sharded reductions add in another order: agreement to float32 round-off, which
        # four Adafactor updates amplify a little.
        np.testing.assert_allclose([losses[s] for s in range(1, 5)],
                                   [reference[s] for s in range(1, 5)], rtol=2e-4)


def test_sigterm_saves_and_exits_cleanly_then_resumes(tmp_path):
    model_dir = tmp_path / "run"

    def send_sigterm_after_two_logged_steps():
        path = model_dir / "metrics.jsonl"
        deadline = time.time() + 120
        while time.time() < deadline:
            if path.exists() and len(path.read_text().splitlines()) >= 2:
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.01)

    threading.Thread(target=send_sigterm_after_two_logged_steps, daemon=True).start()
    summary = train.train(**tiny.train_kwargs(model_dir, steps=200, save_every=1000))
    assert summary.preempted
    assert 2 <= summary.final_step < 200
    assert checkpointing.Checkpointer(str(model_dir)).latest_step() == summary.final_step
    resumed = train.train(**tiny.train_kwargs(model_dir, steps=summary.final_step + 2))
    assert resumed.start_step == summary.final_step and not resumed.preempted


def test_non_finite_loss_stops_with_the_step_and_keeps_last_checkpoint(tmp_path):
    model_dir = tmp_path / "diverge"
    kwargs = tiny.train_kwargs(model_dir, steps=20, save_every=1,
                               optimizer=optim.OptimizerConfig(learning_rate=1e30))
    with pytest.raises(train.NonFiniteLossError, match=r"at step (\d+)") as error:
        train.train(**kwargs)
    bad_step = int(error.value.args[0].split("at step ")[1].split(".")[0])
    saved = checkpointing.Checkpointer(str(model_dir)).all_steps()
    assert saved and max(saved) == bad_step - 1, (saved, bad_step)
    assert f"last good checkpoint is step {bad_step - 1}" in str(error.value)
    _saved_params(model_dir, bad_step - 1)  # still restorable
    logged = [r["step"] for r in metrics_log.read_metrics(str(model_dir))]
    assert bad_step not in logged


def test_initial_checkpoint_path_loads_params_only(tmp_path):
    source = tmp_path / "pretrained"
    train.train(**tiny.train_kwargs(source, steps=3))
    summary = train.train(**tiny.train_kwargs(tmp_path / "finetune", steps=1,
                                              initial_checkpoint_path=str(source)))
    assert summary.start_step == 0
    # Starting from trained params, the first loss is below a fresh model's first loss.
    fresh_first = _losses(source)[1]
    assert _losses(tmp_path / "finetune")[1] < fresh_first
    with pytest.raises(FileNotFoundError, match="holds no flan_jax checkpoint"):
        train.train(**tiny.train_kwargs(tmp_path / "x", steps=1,
                                        initial_checkpoint_path=str(tmp_path / "nowhere")))
    assert not (tmp_path / "x").exists(), "a bad INITIAL_CHECKPOINT_PATH must write nothing"
