r"""Instruction-tunes a T5 encoder-decoder on a SeqIO mixture: the gin entry point.

    python -m flan_jax.train \
      --gin_file=gin_configs/models/t5_1_1/base.gin \
      --gin_file=gin_configs/runs/finetune.gin \
      --gin.MIXTURE_OR_TASK_NAME="'mini_flan_heldout_entailment_train'" \
      --gin.TASK_FEATURE_LENGTHS="{'inputs': 512, 'targets': 128}" \
      --gin.TRAIN_STEPS=10000 --gin.MODEL_DIR="'/tmp/flan_run'"

`train()` reads top to bottom: validate the launch (nothing is written before it passes),
lay out shapes and shardings, build the data pipeline, initialise or restore the state and
the data position, compile the step, run the loop, finish. Every argument is bound by the gin
run files (gin_configs/runs/finetune.gin); the library modules it calls know nothing about gin.
"""
from __future__ import annotations

# First, before jax or seqio load: TensorFlow's start-up banners dropped (flan_jax/console.py).
from flan_jax import console  # noqa: F401, I001

import dataclasses
import logging
import math
import os
import signal
import threading
import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from flan_jax import (checkpointing, data, evaluation, launch, metrics_log, optim,
                      partitioning, paths, peft, trainer)
from flan_jax.models import t5

# Macros a run must set; checked before anything else happens.
REQUIRED_MACROS = ("MODEL_DIR", "MIXTURE_OR_TASK_NAME", "TASK_FEATURE_LENGTHS", "TRAIN_STEPS")


@dataclasses.dataclass(frozen=True)
class TrainSummary:
    """What a finished (or preempted) run leaves behind."""

    model_dir: str
    checkpoint_dir: str
    metrics_path: str
    tensorboard_dir: str
    start_step: int
    final_step: int
    first_loss: float | None
    last_loss: float | None
    preempted: bool


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; no checkpoint was written after that step."""


class _PreemptionFlag:
    """Set by SIGTERM (what a preempted VM or a killed job receives); polled by the loop."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        # Signal handlers can only be installed from the main thread.
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum, frame):
        logging.warning("SIGTERM received: saving a checkpoint and stopping after this step.")
        self.requested = True

    def should_stop(self) -> bool:
        """True on every process as soon as any process was signalled."""
        if jax.process_count() == 1:
            return self.requested
        from jax.experimental import multihost_utils
        return bool(np.any(multihost_utils.process_allgather(np.array(self.requested))))

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


def train(
    *,
    model_dir: str,
    model_config: t5.T5Config,
    train_dataset: data.DatasetConfig,
    train_steps: int,
    optimizer: optim.OptimizerConfig = optim.OptimizerConfig(),
    loss: trainer.LossConfig = trainer.LossConfig(),
    partitioning_config: partitioning.PartitioningConfig = partitioning.PartitioningConfig(),
    checkpoint: checkpointing.CheckpointConfig = checkpointing.CheckpointConfig(),
    num_microbatches: int = 1,
    initial_checkpoint_path: str | None = None,
    log_every_steps: int = 10,
    random_seed: int = 0,
    progress_bar: bool | None = None,
    eval_dataset: evaluation.EvalConfig | None = None,
    eval_period: int = 1000,
) -> TrainSummary:
    """Trains until `train_steps` updates have been applied in total (resuming counts).

    With eval_dataset naming a mixture, the params are evaluated every `eval_period` steps and
    the metrics ('eval/<task>/<metric>') join that step's record in metrics.jsonl.
    """
    # ------------------------------------------------------------------ validate the launch
    model_dir = paths.output_dir(model_dir, "MODEL_DIR")
    if not isinstance(train_steps, int) or train_steps < 1:
        raise ValueError(f"TRAIN_STEPS must be a positive integer, got {train_steps!r}.")
    if not isinstance(num_microbatches, int) or num_microbatches < 1:
        raise ValueError(f"num_microbatches must be a positive integer, got {num_microbatches!r}.")
    # The configs validated themselves when gin built them (names, splits, feature lengths,
    # batch sizes: DatasetConfig, EvalConfig, OptimizerConfig, ...); here only what needs
    # several of them together, or the devices.
    mesh = partitioning.create_mesh(partitioning_config.num_partitions)
    partitioning.check_batch_size(train_dataset.batch_size, mesh, num_microbatches)
    data.check_vocabulary_fits(train_dataset.mixture_or_task_name, model_config.vocab_size)
    if initial_checkpoint_path:
        checkpointing.resolve_initial_checkpoint(initial_checkpoint_path)
    peft.check_launch(model_config,
                      initial_checkpoint_path or peft.read_base_pointer(model_dir))
    evaluate_during_training = bool(eval_dataset and eval_dataset.mixture_or_task_name)
    if evaluate_during_training and (not isinstance(eval_period, int) or eval_period < 1):
        raise ValueError(f"EVAL_PERIOD must be a positive integer, got {eval_period!r}.")

    # ------------------------------------------------------------------ shapes and shardings
    # Model, state layout and jit(train_step): the assembly shared with bench and aot.
    tx = optim.make_optimizer(optimizer)
    program = trainer.build_train_program(
        model_config, tx, loss, mesh, partitioning_config.parameter_sharding, num_microbatches)
    model, rules, layout = program.model, program.rules, program.layout
    batch_sharding, replicated = program.batch_sharding, program.replicated
    # Built before anything is written, as its constructor checks the eval batch size and
    # vocabulary against this mesh and model; eval data cached, generate/score jitted apart.
    evaluator = (evaluation.Evaluator(eval_dataset, model, mesh, rules,
                                      layout.param_shardings)
                 if evaluate_during_training else None)

    # ------------------------------------------------------------------ initialise or restore
    # Order written down in flan_jax/checkpointing.py: MODEL_DIR, INITIAL_CHECKPOINT_PATH, init.
    ckpt = checkpointing.Checkpointer(model_dir, checkpoint)
    # The data iterator exists before the restore, which moves it to the checkpoint's
    # position (its saved tf.data state, or a replay for an older checkpoint).
    batches = data.BatchIterator(train_dataset, prompt_length=model_config.prompt_length)
    frozen = None  # parameter-efficient tuning: the frozen base params, beside the state
    with partitioning.sharding_context(mesh, rules):
        if program.is_peft:
            base = _peft_base(model_dir, initial_checkpoint_path,
                              resuming=ckpt.latest_step() is not None)
            frozen = checkpointing.load_initial_params(base, layout.frozen_abstract)
        resumed = ckpt.restore_latest(layout.abstract, batches)
        if resumed is not None:
            state = resumed.state
            origin = f"resumed from {ckpt.directory} at step {resumed.step}"
            if resumed.set_aside:
                origin += (" (newer checkpoint(s) did not restore and were moved aside, not "
                           f"deleted: {', '.join(resumed.set_aside)})")
        elif program.is_peft:
            provider = data.get_mixture_or_task(train_dataset.mixture_or_task_name)
            vocabulary = provider.output_features["inputs"].vocabulary
            state = program.init_state(random_seed, frozen, vocabulary)
            peft.write_base_pointer(model_dir, base, model_config)
            origin = f"prompt/LoRA initialised, frozen base from {base}"
        elif initial_checkpoint_path:
            params = checkpointing.load_initial_params(
                initial_checkpoint_path, layout.abstract.params)
            init_opt = jax.jit(tx.init, out_shardings=layout.shardings.opt_state)
            state = trainer.TrainState(step=jnp.zeros((), jnp.int32), params=params,
                                       opt_state=init_opt(params))
            origin = f"params from {initial_checkpoint_path}"
        else:
            state = program.init_state(random_seed)
            origin = "initialised randomly"
    start_step = int(state.step)
    logging.info("Train state %s (%s params, %s trainable).", origin,
                 f"{program.num_params:,}", f"{program.num_trainable_params:,}")
    step_extra = () if frozen is None else (frozen,)  # the frozen base: step_fn's 4th input

    def all_params(state: trainer.TrainState) -> Any:
        return state.params if frozen is None else peft.merge(state.params, frozen)

    # ------------------------------------------------------------------ compile the step
    step_fn = program.step_fn
    dropout_key = jax.device_put(jax.random.PRNGKey(random_seed + 1), replicated)
    schedule = optim.make_schedule(optimizer)

    # ------------------------------------------------------------------ train loop
    log = metrics_log.MetricsLog(model_dir, train_steps, start_step, progress_bar)
    log.message(f"flan_jax: {origin}; training steps {start_step}..{train_steps} on "
                f"{jax.device_count()} device(s), mesh {dict(mesh.shape)}.")
    window: list[dict[str, float]] = []  # host metrics since the last log line
    window_start = time.perf_counter()
    first_loss = last_loss = None
    pending: tuple[int, Any] | None = None  # (step, device metrics) not yet checked

    def check(step: int, device_metrics: Any) -> None:
        """Pulls one step's metrics to the host and stops on a non-finite loss."""
        host = {k: float(v) for k, v in jax.device_get(device_metrics).items()}
        if not math.isfinite(host["loss"]):
            ckpt.wait()
            raise NonFiniteLossError(
                f"The loss became {host['loss']} at step {step}. Nothing was saved after it; "
                f"the last good checkpoint is step {ckpt.latest_step()} in {ckpt.directory}. "
                "Lower the learning rate, enable z-loss, or check the data, then resume.")
        window.append(host)

    def flush_log(step: int, extra: dict[str, float] | None = None) -> None:
        nonlocal window_start, first_loss, last_loss
        elapsed = time.perf_counter() - window_start
        counts = ("tokens", "input_tokens")
        means = {k: float(np.mean([m[k] for m in window])) for k in window[0] if k not in counts}
        # Real (non-padding) input + target tokens processed per second, as the benchmark counts.
        tokens = sum(m["tokens"] + m["input_tokens"] for m in window)
        means.update(learning_rate=float(schedule(step - 1)),
                     tokens_per_s=tokens / elapsed, seconds_per_step=elapsed / len(window))
        log.write(step, {**means, **(extra or {})})
        first_loss = means["loss"] if first_loss is None else first_loss
        last_loss = means["loss"]
        window.clear()
        window_start = time.perf_counter()

    step = start_step
    preempted = False
    with _PreemptionFlag() as preemption:
        try:
            with partitioning.sharding_context(mesh, rules):
                while step < train_steps:
                    batch = data.to_global_arrays(next(batches), batch_sharding)
                    state, metrics = step_fn(state, batch, dropout_key, *step_extra)
                    if pending is not None:
                        # One step behind: the next step is already queued on the devices.
                        check(*pending)
                    step += 1
                    pending = (step, metrics)
                    log.advance(step)
                    preempted = preemption.should_stop()
                    is_last = step == train_steps or preempted
                    eval_due = evaluator is not None and step % eval_period == 0
                    if (step % log_every_steps == 0 or is_last or ckpt.should_save(step)
                            or eval_due):
                        check(*pending)
                        pending = None
                        eval_metrics = None
                        if eval_due:
                            eval_started = time.perf_counter()
                            eval_metrics = evaluator.evaluate(all_params(state), step).flat()
                            # Evaluation time is not training time either.
                            window_start += time.perf_counter() - eval_started
                        if step % log_every_steps == 0 or is_last or eval_due:
                            flush_log(step, eval_metrics)
                    if ckpt.should_save(step) or is_last:
                        save_started = time.perf_counter()
                        ckpt.save(step, state, batches)
                        # The blocking part of a save is not training time.
                        window_start += time.perf_counter() - save_started
                    if preempted:
                        log.message(f"flan_jax: preempted; saved step {step}, exiting cleanly.")
                        break
        finally:
            ckpt.close()
            log.close()
            if evaluator is not None:
                evaluator.close()

    # ------------------------------------------------------------------ finish
    summary = TrainSummary(
        model_dir=model_dir, checkpoint_dir=ckpt.directory, metrics_path=log.path,
        tensorboard_dir=log.tensorboard_dir, start_step=start_step, final_step=step,
        first_loss=first_loss, last_loss=last_loss, preempted=preempted)
    if jax.process_index() == 0:
        _print_summary(summary)
    return summary


def _peft_base(model_dir: str, initial_checkpoint_path: str | None, resuming: bool) -> str:
    """The step directory of a parameter-efficient run's frozen base.

    A fresh run takes INITIAL_CHECKPOINT_PATH's latest step. A resumed run takes the step
    recorded in MODEL_DIR, even if the base run has saved later steps since (relaunching the
    same command must not change the base), and refuses an INITIAL_CHECKPOINT_PATH in
    another checkpoint directory.
    """
    recorded = peft.read_base_pointer(model_dir) if resuming else None
    if initial_checkpoint_path:
        directory, step = checkpointing.resolve_initial_checkpoint(initial_checkpoint_path)
        if recorded and os.path.normpath(os.path.dirname(recorded)) != os.path.normpath(
                directory):
            raise ValueError(
                f"MODEL_DIR {model_dir} was trained on the frozen base {recorded}, but "
                f"INITIAL_CHECKPOINT_PATH now names {directory}. Resume with the recorded "
                "base (or leave INITIAL_CHECKPOINT_PATH unset), or start a new MODEL_DIR.")
        return recorded or os.path.join(directory, str(step))
    if recorded is None:
        raise ValueError(f"MODEL_DIR {model_dir} has a checkpoint but no {peft.BASE_POINTER_FILE}"
                         " naming its frozen base; set INITIAL_CHECKPOINT_PATH to that base.")
    return recorded


def _print_summary(s: TrainSummary) -> None:
    loss = ("no steps run" if s.first_loss is None else
            f"{s.first_loss:.4f} (first logged) -> {s.last_loss:.4f} (last logged)")
    print(f"flan_jax: trained steps {s.start_step}..{s.final_step}"
          f"{' (preempted)' if s.preempted else ''}\n"
          f"  checkpoints: {s.checkpoint_dir}\n"
          f"  metrics:     {s.metrics_path}\n"
          f"  tensorboard: {s.tensorboard_dir}\n"
          f"  loss:        {loss}", flush=True)


def main(argv: Sequence[str] | None = None) -> TrainSummary:
    return launch.run_gin_function(train, argv, "Instruction-tune a T5 on a SeqIO mixture.",
                                   REQUIRED_MACROS)


if __name__ == "__main__":
    # Run main() of the *imported* module, not of __main__: the gin files bind
    # flan_jax.train.train, and under `python -m` this file is loaded a second time as
    # __main__, whose train() gin would not know about.
    from flan_jax import train as _entry
    launch.exit_on_user_error(_entry.main, "flan_jax.train")
