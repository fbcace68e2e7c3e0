"""Two processes (jax.distributed on 127.0.0.1, gloo) train like one process on the same batch,
also across a resume (each process restores its own data shard's position)."""
import functools
import os
import socket
import subprocess
import sys

import flax.linen as nn
import jax
import numpy as np

import tiny
from flan_jax import data, metrics_log, optim, partitioning, trainer

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
WORKER = """
import sys
sys.path.insert(0, {tests_dir!r})
from flan_jax import launch, train
launch.maybe_initialize_distributed(launch.LaunchArgs(
    gin_files=[], gin_bindings=[], gin_search_paths=[], distributed=True,
    coordinator_address={address!r}, num_processes=2, process_id=int(sys.argv[1])))
import jax
assert jax.process_count() == 2 and jax.device_count() == 4, jax.devices()
import tiny
# Stopped at step 2 and resumed: each process restores its own shard's data position.
train.train(**tiny.train_kwargs({model_dir!r}, steps=2, batch_size=8))
train.train(**tiny.train_kwargs({model_dir!r}, steps=3, batch_size=8))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _single_process_losses(steps: int) -> list[float]:
    """The same global batch, assembled here from both processes' data shards."""
    kwargs = tiny.train_kwargs("/unused", steps=steps, batch_size=8)
    mesh = partitioning.create_mesh(1, devices=jax.devices()[:4])
    rules = partitioning.logical_axis_rules()
    model = tiny.t5.Transformer(kwargs["model_config"])
    tx = optim.make_optimizer(kwargs["optimizer"])
    shards = [data.BatchIterator(kwargs["train_dataset"], process_index=i, process_count=2)
              for i in range(2)]
    step_fn = jax.jit(functools.partial(
        trainer.train_step, model=model, optimizer=tx, loss_config=kwargs["loss"]))
    losses = []
    with mesh, nn.logical_axis_rules(rules):
        state = trainer.init_train_state(model, tx, trainer.state_layout(model, tx, mesh, rules),
                                         kwargs["random_seed"])
        for _ in range(steps):
            local = [next(s) for s in shards]
            batch = {k: np.concatenate([b[k] for b in local]) for k in local[0]}
            state, metrics = step_fn(state, batch, jax.random.PRNGKey(kwargs["random_seed"] + 1))
            losses.append(float(metrics["loss"]))
    return losses


def test_two_processes_match_one_process(tmp_path):
    model_dir = str(tmp_path / "run")
    script = WORKER.format(tests_dir=TESTS_DIR, address=f"127.0.0.1:{_free_port()}",
                           model_dir=model_dir)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    workers = [subprocess.Popen([sys.executable, "-c", script, str(i)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for i in range(2)]
    outputs = [w.communicate(timeout=400)[0] for w in workers]
    for w, out in zip(workers, outputs):
        assert w.returncode == 0, out[-3000:]
    logged = [r["loss"] for r in metrics_log.read_metrics(model_dir)]
    assert len(logged) == 3
    np.testing.assert_allclose(logged, _single_process_losses(3), rtol=1e-4)
    assert sorted(os.listdir(os.path.join(model_dir, "checkpoints"))) == ["2", "3"]
    for step in ("2", "3"):  # the JSON position, and each process's own tf.data state
        item = os.path.join(model_dir, "checkpoints", step, "data")
        assert {"metadata", "process_0-of-2", "process_1-of-2"} <= set(os.listdir(item))
        for process in ("process_0-of-2", "process_1-of-2"):
            assert "pipeline.index" in os.listdir(os.path.join(item, process))
