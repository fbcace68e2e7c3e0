"""The one Orbax module: a single CheckpointManager per run directory.

A checkpoint at MODEL_DIR/checkpoints/<step>/ holds two items:
  state: the TrainState {step, params, opt_state} (Orbax StandardSave, sharded arrays)
  data:  the data iterator's position (JSON, see flan_jax.data.BatchIterator.state)

Resume order (flan_jax.train follows it; write nothing before deciding):
  1. MODEL_DIR has a complete checkpoint -> restore the latest one: state and data position.
     (Orbax writes to a temporary directory and renames it when done, so a save cut short by
     preemption is never taken for a complete one.)
  2. else INITIAL_CHECKPOINT_PATH is set -> take only its params; fresh optimizer, step 0,
     data from the start. It may name a run directory, its checkpoints/ directory, or one
     step directory.
  3. else random initialisation.
Before anything is restored, the checkpoint's parameter shapes are compared with the model's,
so a run pointed at another model's directory stops with a message instead of a traceback.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Mapping

import flax.linen as nn
import jax
import optax
import orbax.checkpoint as ocp
from etils import epath

from flan_jax import peft, trainer
from flan_jax.models import t5

CHECKPOINT_SUBDIR = "checkpoints"


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
    """When to save and what to keep.

    Attributes:
      save_every_steps: save when step % save_every_steps == 0 (and always at the end).
      keep: how many of the most recent checkpoints to keep (None keeps all).
      async_save: write in a background thread while training continues.
    """

    save_every_steps: int = 1000
    keep: int | None = 3
    async_save: bool = True

    def __post_init__(self):
        if self.save_every_steps < 1:
            raise ValueError(f"save_every_steps must be >= 1, got {self.save_every_steps}.")
        if self.keep is not None and self.keep < 1:
            raise ValueError(f"keep must be None or >= 1, got {self.keep}.")


def absolute_path(path: str) -> str:
    """Local paths made absolute; URLs (gs://..., the usual MODEL_DIR on TPU) kept as given."""
    return path if "://" in path else os.path.abspath(path)


class ShapeMismatchError(ValueError):
    """A checkpoint's parameters do not fit the configured model."""


class Checkpointer:
    """Saves and restores {state, data} under `<model_dir>/checkpoints`."""

    def __init__(self, model_dir: str, config: CheckpointConfig = CheckpointConfig()):
        self.directory = os.path.join(absolute_path(model_dir), CHECKPOINT_SUBDIR)
        self.config = config
        self._manager = ocp.CheckpointManager(
            self.directory,
            # Named up front so a fresh manager can read an existing checkpoint's metadata.
            item_handlers={"state": ocp.StandardCheckpointHandler(),
                           "data": ocp.JsonCheckpointHandler()},
            options=ocp.CheckpointManagerOptions(
                max_to_keep=config.keep,
                # We decide when to save (periodic, final, preemption); Orbax only writes.
                save_interval_steps=1,
                enable_async_checkpointing=config.async_save,
                create=True,
            ),
        )

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self._manager.all_steps())

    def should_save(self, step: int) -> bool:
        return step % self.config.save_every_steps == 0

    def save(self, step: int, state: Any, data_state: Mapping[str, Any]) -> None:
        """Starts saving (asynchronously when configured); a step already saved is skipped."""
        if step in self._manager.all_steps():
            return
        self._manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(dict(data_state))))

    def restore(self, step: int, abstract_state: Any) -> tuple[Any, dict[str, Any]]:
        """Restores {state, data} of `step` into the shardings carried by abstract_state."""
        check_param_shapes(self._manager, step, abstract_state.params, self.directory)
        self._check_resumable(step)
        restored = self._manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()))
        return restored["state"], dict(restored["data"])

    def _check_resumable(self, step: int) -> None:
        """A params-only checkpoint (e.g. from flan_jax.convert) cannot continue a run."""
        state = self._manager.item_metadata(step).get("state") or {}
        # The JSON item carries no tree metadata, so look for its directory instead.
        has_data = (epath.Path(self.directory) / str(step) / "data").exists()
        if "opt_state" not in state or not has_data:
            raise ValueError(
                f"MODEL_DIR's checkpoint {self.directory}/{step} holds params only (a converted "
                "or exported checkpoint), not a resumable training state. Pass that directory "
                "as INITIAL_CHECKPOINT_PATH and give the run a new MODEL_DIR.")

    def wait(self) -> None:
        """Blocks until pending asynchronous saves are on disk."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()


def _flat_shapes(tree: Any) -> dict[str, tuple[int, ...]]:
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {"/".join(str(getattr(k, "key", k)) for k in path): tuple(leaf.shape)
            for path, leaf in flat}


def check_param_shapes(manager: ocp.CheckpointManager, step: int, abstract_params: Any,
                       where: str) -> None:
    """Raises ShapeMismatchError when the checkpoint's params differ from the model's."""
    metadata = manager.item_metadata(step)["state"]
    saved = _flat_shapes(metadata["params"])
    wanted = _flat_shapes(abstract_params)
    problems = [f"{name}: checkpoint {saved.get(name, 'missing')} vs model {shape}"
                for name, shape in wanted.items() if saved.get(name) != shape]
    problems += [f"{name}: in the checkpoint but not in the model"
                 for name in saved.keys() - wanted.keys()]
    if problems:
        listed = "; ".join(problems[:4]) + (f"; and {len(problems) - 4} more"
                                            if len(problems) > 4 else "")
        raise ShapeMismatchError(
            f"The checkpoint at {where} (step {step}) was written by a model of a different "
            f"shape than the one configured: {listed}. Use the model gin file that run was "
            "started with, or point MODEL_DIR at a new directory. Nothing was changed on disk.")


def resolve_initial_checkpoint(path: str, macro: str = "INITIAL_CHECKPOINT_PATH"
                               ) -> tuple[str, int]:
    """A run dir, its checkpoints/ dir or a step dir -> (checkpoints dir, step).

    `macro` names the setting the path came from, for the error message.
    """
    root = epath.Path(absolute_path(path))
    for directory in (root / CHECKPOINT_SUBDIR, root):
        if directory.is_dir():
            steps = ocp.utils.checkpoint_steps(directory)
            if steps:
                return str(directory), max(steps)
    if root.name.isdigit() and root.is_dir():
        return str(root.parent), int(root.name)
    raise FileNotFoundError(
        f"{macro}={path!r} holds no flan_jax checkpoint. Give a run directory (MODEL_DIR of "
        "an earlier run), its checkpoints/ directory, or one step directory inside it.")


def load_initial_params(path: str, abstract_params: Any) -> Any:
    """Only the params of another run's checkpoint, laid out by abstract_params' shardings."""
    directory, step = resolve_initial_checkpoint(path)
    manager = ocp.CheckpointManager(
        directory, item_handlers={"state": ocp.PyTreeCheckpointHandler()},
        options=ocp.CheckpointManagerOptions(read_only=True, create=False))
    check_param_shapes(manager, step, abstract_params, directory)
    target = {"params": abstract_params}
    restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
        item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(target),
        partial_restore=True)))
    manager.close()
    return restored["state"]["params"]


@dataclasses.dataclass(frozen=True)
class RestoredParams:
    """A checkpoint's params laid out as in training (what evaluation and inference use)."""

    params: Any
    shardings: Any  # NamedSharding per param: jit in_shardings for the params
    step: int
    checkpoint_dir: str


def restore_params(checkpoint_path: str, model: t5.Transformer, mesh: jax.sharding.Mesh,
                   rules) -> RestoredParams:
    """Params of CHECKPOINT_PATH (run dir, checkpoints/ dir or step dir), sharded on `mesh`.

    A prompt-tuning or LoRA run's checkpoint holds only its trainable part; the frozen base
    named in its run directory (flan_jax/peft.py) is loaded and merged in.
    """
    checkpoint_dir, step = resolve_initial_checkpoint(checkpoint_path, macro="CHECKPOINT_PATH")
    # Params only: an optimizer without state gives training's parameter layout.
    layout = trainer.state_layout(model, optax.set_to_zero(), mesh, rules)
    record = peft.read_run_record(os.path.dirname(checkpoint_dir))
    if record is not None and layout.frozen_abstract is None:
        raise ValueError(
            f"{checkpoint_path} is a prompt-tuning / LoRA run (its {peft.BASE_POINTER_FILE}: "
            f"prompt_length={record['prompt_length']}, lora_rank={record['lora_rank']}) but "
            "the model config has neither. Add the run's settings, e.g. "
            f"--gin.t5.T5Config.prompt_length={record['prompt_length']} "
            f"--gin.t5.T5Config.lora_rank={record['lora_rank']} (and lora_alpha / "
            "lora_targets if the run changed them).")
    with mesh, nn.logical_axis_rules(rules):
        params = load_initial_params(checkpoint_path, layout.abstract.params)
        if layout.frozen_abstract is not None:
            run_dir = os.path.dirname(checkpoint_dir)
            base = peft.read_base_pointer(run_dir)
            if base is None:
                raise ValueError(
                    f"The model config has a soft prompt or LoRA, but {run_dir} has no "
                    f"{peft.BASE_POINTER_FILE} naming the frozen base model; give the "
                    "MODEL_DIR of a prompt-tuning / LoRA run, or drop the prompt/LoRA "
                    "settings to load a plain checkpoint.")
            params = peft.merge(params, load_initial_params(base, layout.frozen_abstract))
    logging.info("Restored params of step %d from %s.", step, checkpoint_dir)
    return RestoredParams(params=params, shardings=layout.param_shardings, step=step,
                          checkpoint_dir=checkpoint_dir)
