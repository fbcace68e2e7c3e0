"""The one Orbax module: every checkpoint read and write of flan_jax goes through here.

A checkpoint at MODEL_DIR/checkpoints/<step>/ holds two items:
  state: the TrainState {step, params, opt_state} (Orbax StandardSave, sharded arrays)
  data:  the data iterator's position: data/metadata, JSON written by process 0 (see
         flan_jax.data.BatchIterator.state), and data/process_<i>-of-<n>/, each process's own
         tf.data iterator state (BatchIterator.pipeline_files; absent in checkpoints written
         before it existed, which resume by replaying the data)
A converted checkpoint (flan_jax.convert) has the same layout with state = {params} only.

Resume order (flan_jax.train follows it; write nothing before deciding):
  1. MODEL_DIR has a complete checkpoint -> restore the newest one that restores: state and
     data position. (Orbax writes to a temporary directory and renames it when done, so a
     save cut short by preemption is never taken for a complete one.)
  2. else INITIAL_CHECKPOINT_PATH is set -> take only its params; fresh optimizer, step 0,
     data from the start. It may name a run directory, its checkpoints/ directory, or one
     step directory.
  3. else random initialisation.
Before anything is restored, the checkpoint's parameter shapes are compared with the model's,
so a run pointed at another model's directory stops with a message instead of a traceback.

Damaged checkpoints (a torn copy, a full disk, a partial rsync). The check is the restore
itself: a step counts as damaged when Orbax cannot read what the caller needs from it
(training: state and data; evaluation, inference, conversion: the params). That costs nothing
for a sound checkpoint, where a separate check (metadata plus file sizes) would read the
metadata twice and still miss what only reading finds: OCDBT keeps many arrays in one data
file at offsets listed in its manifest, so no file size can be checked without parsing that
manifest, and a per-process file left over from the merge may be truncated harmlessly since
nothing reads it. Given a run or checkpoints/ directory, readers take the newest step that
restores and log each damaged one; given one step directory, they read only that step. When
nothing restores they stop with DamagedCheckpointError naming every step tried. A damaged
directory is never deleted; a resuming run moves it aside (<step>.damaged, see
Checkpointer.restore_latest) so that neither retention (`keep`) nor a later save of the same
step can touch it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import sys
from typing import Any, Callable, Iterator, Mapping, Protocol, Sequence, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from flan_jax import partitioning, peft
from flan_jax.convert import layers
from flan_jax.models import t5

T = TypeVar("T")

CHECKPOINT_SUBDIR = "checkpoints"
STATE_ITEM = "state"
DATA_ITEM = "data"
# A damaged step directory is renamed <step>.damaged: a name Orbax does not take for a step
# (nor for one of its temporary directories), so retention and later saves leave it alone.
DAMAGED_SUFFIX = ".damaged"


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
    """When to save and what to keep.

    Attributes:
      save_every_steps: save when step % save_every_steps == 0 (and always at the end).
      keep: how many of the most recent checkpoints to keep (None keeps all).
      async_save: write in a background thread while training continues.
      save_dataset: also write each process's tf.data iterator state (T5X's
        SaveCheckpointConfig.save_dataset), so a resume costs the same at any step. Its size
        grows with the shuffle buffers (about 1,000 examples per task of the mixture per
        process: ~18 MiB for mini-FLAN, hundreds of MiB for a FLAN mixture of long
        examples). False writes only the batch count: a resume then replays the data from
        the start (just as exact, slower the later the step; T5X without it restarts the
        data instead).
    """

    save_every_steps: int = 1000
    keep: int | None = 3
    async_save: bool = True
    save_dataset: bool = True

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


class ParamsOnlyError(ValueError):
    """A params-only checkpoint (e.g. from flan_jax.convert) given as a run to resume."""


class DamagedCheckpointError(ValueError):
    """A checkpoint that cannot be read (truncated files or metadata, a missing item)."""


# Raised on purpose by this module; anything else raised while reading means damage.
_OUR_ERRORS = (ShapeMismatchError, ParamsOnlyError, DamagedCheckpointError)


@contextlib.contextmanager
def _reading(where: str) -> Iterator[None]:
    """Turns any failure to read `where` into a DamagedCheckpointError naming it."""
    # Before the read, not after a failure: TensorStore's callbacks into the closed event
    # loop can fire between the failure and our except clause (a race seen in the suite).
    _drop_closed_event_loop_reports()
    try:
        yield
    except _OUR_ERRORS:
        raise
    except Exception as error:  # Orbax, TensorStore and json raise many unrelated types
        lines = str(error).strip().splitlines() or [""]
        reason = lines[0] if len(lines[0]) <= 300 else lines[0][:300] + " ..."
        raise DamagedCheckpointError(
            f"{where} cannot be read ({type(error).__name__}: {reason})") from error


def _drop_closed_event_loop_reports() -> None:
    """Silences the echo of a failed restore; installed once, before the first read.

    When one array of a restore fails, Orbax closes its event loop while TensorStore still
    completes the other reads in flight; each completion calls back into the closed loop, and
    its RuntimeError('Event loop is closed') is printed as a traceback through
    sys.unraisablehook, hundreds of lines that say nothing the DamagedCheckpointError does
    not. Only that error is dropped; every other unraisable exception still shows.
    """
    previous = sys.unraisablehook
    if getattr(previous, "drops_closed_event_loop", False):
        return

    def hook(unraisable) -> None:
        error = unraisable.exc_value
        if not (isinstance(error, RuntimeError) and str(error) == "Event loop is closed"):
            previous(unraisable)

    hook.drops_closed_event_loop = True
    sys.unraisablehook = hook


# ----------------------------------------------------------------------------------------
# Parameter trees: the one flattener and the one shape check
# ----------------------------------------------------------------------------------------

def flatten(tree: Mapping[str, Any], is_leaf: Callable[[Any], bool] | None = None
            ) -> dict[str, Any]:
    """{"a": {"b": x}} -> {"a/b": x}: nested mappings (dicts, Orbax metadata trees) joined by
    '/', the names flan_jax uses for parameters. `is_leaf` stops at mappings that are values.
    """
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping) and not (is_leaf and is_leaf(value)):
            out.update({f"{key}/{name}": leaf for name, leaf in flatten(value, is_leaf).items()})
        else:
            out[str(key)] = value
    return out


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{"a/b/c": x} -> {"a": {"b": {"c": x}}}, the inverse of flatten."""
    tree: dict[str, Any] = {}
    for path, value in flat.items():
        node = tree
        *parents, leaf = path.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def flat_shapes(tree: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """{"a/b/c": shape} of a tree of arrays, ShapeDtypeStructs or Orbax array metadata."""
    return {name: tuple(leaf.shape) for name, leaf in flatten(tree).items()}


def check_shapes(found: Mapping[str, Sequence[int]], wanted: Mapping[str, Sequence[int]],
                 where: str, fix: str, model: str = "the configured model") -> None:
    """Raises ShapeMismatchError naming every tensor that is missing, extra or mis-shaped.

    Args:
      found: {"a/b/c": shape} of the checkpoint's parameters.
      wanted: {"a/b/c": shape} of the model's parameters.
      where: the checkpoint, as the message names it.
      fix: the sentence(s) telling the user what to do.
      model: the model, as the message names it.
    """
    found = {name: tuple(shape) for name, shape in found.items()}
    problems = [f"{name}: checkpoint {found[name]} vs model {tuple(shape)}"
                if name in found else f"{name}: not in the checkpoint (the model needs "
                                      f"{tuple(shape)})"
                for name, shape in wanted.items() if found.get(name) != tuple(shape)]
    problems += [f"{name}: in the checkpoint but not in the model"
                 for name in found if name not in wanted]
    if problems:
        listed = "; ".join(problems[:6]) + (f"; and {len(problems) - 6} more"
                                            if len(problems) > 6 else "")
        raise ShapeMismatchError(
            f"The parameters in {where} do not fit {model} (they were written by a model of "
            f"a different shape): {listed}. {fix}")


_RUN_FIX = ("Use the model gin file that run was started with, or point MODEL_DIR at a new "
            "directory. Nothing was changed on disk.")
_PATH_FIX = ("Use the model gin file of the model that wrote the checkpoint (a converted "
             "checkpoint has its model.gin next to it).")


# ----------------------------------------------------------------------------------------
# The data item: the iterator's JSON position (process 0) and each process's pipeline files
# ----------------------------------------------------------------------------------------

class DataIterator(Protocol):
    """What the data item saves and restores (flan_jax.data.BatchIterator is one)."""

    process_index: int
    process_count: int

    def state(self) -> dict[str, Any]: ...

    def pipeline_files(self) -> dict[str, bytes]: ...

    def restore(self, state: Mapping[str, Any], pipeline_dir: str | None = None) -> None: ...


# The JSON position keeps the file name of Orbax's JsonCheckpointHandler, which wrote the
# data item before pipeline files existed: such checkpoints read as before (and resume by
# replay, see BatchIterator.restore).
_DATA_POSITION_FILE = "metadata"


def _pipeline_dir_name(iterator: DataIterator) -> str:
    """One process's directory of pipeline files inside the data item (T5X's names)."""
    return f"process_{iterator.process_index}-of-{iterator.process_count}"


@dataclasses.dataclass
class DataSave(ocp.args.CheckpointArgs):
    """position: the JSON state (written by process 0); files: this process's pipeline
    files, {name: contents}, captured when the save began; pipeline_dir_name: their
    directory inside the item."""

    position: Mapping[str, Any]
    files: Mapping[str, bytes]
    pipeline_dir_name: str


@dataclasses.dataclass
class DataRestore(ocp.args.CheckpointArgs):
    """Reads the JSON position only; the caller restores the iterator from it."""


class DataCheckpointHandler(ocp.AsyncCheckpointHandler):
    """The data item: <step>/data/metadata (JSON, process 0) and, written by every process
    for itself, <step>/data/process_<i>-of-<n>/ (that process's tf.data iterator state;
    absent when its pipeline could not be saved, and in checkpoints from before it existed:
    the iterator then resumes by replay)."""

    async def async_save(self, directory: epath.Path, args: DataSave) -> list[Any]:
        # The files were captured by the caller, so writing them can wait in the background
        # until Orbax has created the item directory (on every process).
        async def write() -> None:
            self.save(directory, args)

        return [ocp.future.CommitFutureAwaitingContractedSignals(write(), name="data_save")]

    def save(self, directory: epath.Path, args: DataSave) -> None:
        if jax.process_index() == 0:
            (directory / _DATA_POSITION_FILE).write_text(json.dumps(dict(args.position)))
        if args.files:
            pipeline_dir = directory / args.pipeline_dir_name
            pipeline_dir.mkdir()
            for name, contents in args.files.items():
                (pipeline_dir / name).write_bytes(contents)

    def restore(self, directory: epath.Path, args: DataRestore | None = None
                ) -> dict[str, Any]:
        return json.loads((directory / _DATA_POSITION_FILE).read_text())

    def metadata(self, directory: epath.Path) -> None:
        return None  # JSON carries no tree metadata


ocp.args.register_with_handler(DataCheckpointHandler, for_save=True)(DataSave)
ocp.args.register_with_handler(DataCheckpointHandler, for_restore=True)(DataRestore)


# ----------------------------------------------------------------------------------------
# A run directory: save, and resume from the newest checkpoint that restores
# ----------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Resumed:
    """What Checkpointer.restore_latest found.

    Attributes:
      step: the step restored.
      state: the TrainState, laid out as the abstract state asked.
      data_state: the data iterator's position.
      set_aside: newer step directories that did not restore, as renamed (kept on disk).
    """

    step: int
    state: Any
    data_state: dict[str, Any]
    set_aside: tuple[str, ...] = ()


class Checkpointer:
    """Saves and restores {state, data} under `<model_dir>/checkpoints`."""

    def __init__(self, model_dir: str, config: CheckpointConfig = CheckpointConfig()):
        self.directory = os.path.join(absolute_path(model_dir), CHECKPOINT_SUBDIR)
        self.config = config
        self._manager = ocp.CheckpointManager(
            self.directory,
            # Named up front so a fresh manager can read an existing checkpoint's metadata.
            item_handlers={STATE_ITEM: ocp.StandardCheckpointHandler(),
                           DATA_ITEM: DataCheckpointHandler()},
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

    def save(self, step: int, state: Any, data: DataIterator | None = None) -> None:
        """Starts saving (asynchronously when configured); a step already saved is skipped.

        The data iterator's position is captured before this returns, so iteration may go
        on at once. Without `data` only the state item is written (a converted checkpoint).
        """
        if step in self._manager.all_steps():
            return
        items = {STATE_ITEM: ocp.args.StandardSave(state)}
        if data is not None:
            items[DATA_ITEM] = DataSave(
                position=data.state(),
                files=data.pipeline_files() if self.config.save_dataset else {},
                pipeline_dir_name=_pipeline_dir_name(data))
        self._manager.save(step, args=ocp.args.Composite(**items))

    def restore_latest(self, abstract_state: Any, data: DataIterator | None = None
                       ) -> Resumed | None:
        """Restores the newest step that restores; None when there is no checkpoint.

        `data`, when given, is moved to that step's position (DataIterator.restore); a step
        whose data position cannot be read counts as damaged.

        Newer steps that do not restore are logged and renamed <step>.damaged (never
        deleted), once an older one has restored. Raises DamagedCheckpointError, renaming
        nothing, when no step restores.
        """
        damaged: list[tuple[int, DamagedCheckpointError]] = []
        for step in sorted(self.all_steps(), reverse=True):
            try:
                state, data_state = self.restore(step, abstract_state, data)
            except DamagedCheckpointError as error:
                logging.warning("%s; trying the previous checkpoint.", error)
                damaged.append((step, error))
                continue
            set_aside = tuple(self._set_aside(bad) for bad, _ in damaged)
            if damaged:
                self._manager.reload()  # forget the renamed steps
                logging.warning("Resumed from step %d; the damaged checkpoint(s) were moved "
                                "aside, not deleted: %s", step, ", ".join(set_aside))
            return Resumed(step=step, state=state, data_state=data_state, set_aside=set_aside)
        if not damaged:
            return None
        raise DamagedCheckpointError(_none_restores(
            self.directory, damaged,
            "Nothing was changed on disk. Move the damaged step directories out of "
            f"{self.directory} (or restore them from a good copy) to start again from an "
            "earlier checkpoint or from scratch, or give the run a new MODEL_DIR."))

    def restore(self, step: int, abstract_state: Any, data: DataIterator | None = None
                ) -> tuple[Any, dict[str, Any]]:
        """Restores {state, data} of `step` into the shardings carried by abstract_state, and
        `data` (if given) to the saved position; returns (state, the data item's JSON)."""
        where = f"checkpoint {self.directory}/{step}"
        with _reading(where):
            state_metadata = self._manager.item_metadata(step)[STATE_ITEM] or {}
            if "params" not in state_metadata:
                raise DamagedCheckpointError(f"{where} cannot be read (its state item has no "
                                             "params)")
            found = flat_shapes(state_metadata["params"])
            _check_same_layout(found, flat_shapes(abstract_state.params), where)
            check_shapes(found, flat_shapes(abstract_state.params), f"{where} (step {step})",
                         _RUN_FIX)
            self._check_resumable(step, state_metadata)
            restored = self._manager.restore(step, args=ocp.args.Composite(**{
                STATE_ITEM: ocp.args.StandardRestore(abstract_state),
                DATA_ITEM: DataRestore()}))
            data_state = dict(restored[DATA_ITEM])
            if data is not None:
                data.restore(data_state, os.path.join(self.directory, str(step), DATA_ITEM,
                                                      _pipeline_dir_name(data)))
        return restored[STATE_ITEM], data_state

    def _check_resumable(self, step: int, state_metadata: Mapping[str, Any]) -> None:
        """A params-only checkpoint cannot continue a run; a missing data item is damage."""
        if "opt_state" not in state_metadata:
            raise ParamsOnlyError(
                f"MODEL_DIR's checkpoint {self.directory}/{step} holds params only (a "
                "converted or exported checkpoint), not a resumable training state. Pass that "
                "directory as INITIAL_CHECKPOINT_PATH and give the run a new MODEL_DIR.")
        # The JSON item carries no tree metadata, so look for its directory instead.
        if not (epath.Path(self.directory) / str(step) / DATA_ITEM).exists():
            raise DamagedCheckpointError(
                f"checkpoint {self.directory}/{step} cannot be read (its '{DATA_ITEM}' item, "
                "the data iterator position, is missing)")

    def _set_aside(self, step: int) -> str:
        """Renames a damaged step directory out of Orbax's sight; returns its new path."""
        source = epath.Path(self.directory) / str(step)
        target = source.with_name(f"{step}{DAMAGED_SUFFIX}")
        copy = 1
        while target.exists():  # damaged before, at the same step
            copy += 1
            target = source.with_name(f"{step}{DAMAGED_SUFFIX}{copy}")
        # Every process has chosen the same name before process 0 renames.
        _sync_processes(f"flan_jax: name for damaged checkpoint {step}")
        if jax.process_index() == 0:
            source.rename(target)
        _sync_processes(f"flan_jax: moved damaged checkpoint {step}")
        return str(target)

    def wait(self) -> None:
        """Blocks until pending asynchronous saves are on disk."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()


def _check_same_layout(found: Mapping[str, Any], wanted: Mapping[str, Any], where: str
                       ) -> None:
    """A run resumes in the layer layout it was trained in (its optimizer state has it too)."""
    if layers.is_scanned(found) != layers.is_scanned(wanted):
        raise ShapeMismatchError(
            f"{where} was written with T5Config.scan_layers={layers.is_scanned(found)}, but "
            f"the model now has scan_layers={layers.is_scanned(wanted)}. A run resumes in the "
            "layout it was trained in: set SCAN_LAYERS back, or start a new MODEL_DIR with "
            "INITIAL_CHECKPOINT_PATH pointing at this run (its params are converted to the "
            "new layout when loaded; the optimizer starts afresh). Nothing was changed on disk.")


def _sync_processes(name: str) -> None:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices(name)


def _none_restores(directory: str, damaged: Sequence[tuple[int, DamagedCheckpointError]],
                   fix: str) -> str:
    steps = ", ".join(str(step) for step, _ in damaged)
    reasons = "; ".join(str(error) for _, error in damaged)
    return (f"No checkpoint in {directory} restores (step(s) {steps}, all damaged: "
            f"{reasons}). {fix}")


# ----------------------------------------------------------------------------------------
# Params of any checkpoint: the one writer of a params-only checkpoint, the one reader
# ----------------------------------------------------------------------------------------

def save_params(directory: str, params: Mapping[str, Any]) -> None:
    """Writes {'params': params} as step 0 of <directory>/checkpoints (a converted checkpoint)."""
    checkpointer = Checkpointer(directory, CheckpointConfig(keep=None, async_save=False))
    checkpointer.save(0, {"params": params})
    checkpointer.close()


def read_param_tree(item_dir: str, roots: Sequence[Sequence[str]] = (("params",),),
                    abstract: Any = None) -> Any:
    """Restores one subtree of the Orbax PyTree checkpoint in `item_dir`, nothing else.

    Args:
      item_dir: an Orbax PyTree item directory (flan_jax's <step>/state, T5X's
        checkpoint_<step>/state).
      roots: where the subtree may be, tried in order (the first one present is read);
        e.g. ("params",) for flan_jax, ("target",) or ("optimizer", "target") for T5X.
      abstract: the subtree as ShapeDtypeStructs carrying shardings: the shapes are checked
        against the checkpoint and the arrays restored into those shardings. None restores
        every leaf as a host numpy array in its stored dtype. A checkpoint in the other
        layer layout (scanned vs unscanned, flan_jax/convert/layers.py) is converted into
        abstract's layout: a model with T5Config.scan_layers loads unscanned checkpoints
        (converted ones, earlier runs) and the other way round.

    Raises DamagedCheckpointError when item_dir cannot be read, ShapeMismatchError when
    `abstract` does not fit, and ValueError when no root is present.
    """
    # The handler, not a Checkpointer: an item directory has no step metadata of its own.
    handler = ocp.PyTreeCheckpointHandler()
    try:
        return _read_subtree(handler, epath.Path(item_dir), roots, abstract)
    finally:
        handler.close()


def _read_subtree(handler: ocp.PyTreeCheckpointHandler, item_dir: epath.Path,
                  roots: Sequence[Sequence[str]], abstract: Any) -> Any:
    where = f"checkpoint {item_dir}"
    with _reading(where):
        metadata = handler.metadata(item_dir)
    tree = getattr(metadata, "tree", metadata)  # Orbax wraps the tree in a metadata object
    root, subtree = _find_root(tree, roots)
    if root is None:  # a whole tree of another kind: the user's mistake, not damage
        found = sorted(tree) if isinstance(tree, Mapping) else type(tree).__name__
        raise ValueError(f"{item_dir} holds no "
                         f"{' or '.join(repr('/'.join(r)) for r in roots)} tree (found "
                         f"{found}); not a checkpoint of the expected kind.")
    found_scanned = layers.is_scanned(flatten(subtree))
    wanted = abstract
    if abstract is None:
        leaves = flatten(subtree)
        abstract = unflatten({name: jax.ShapeDtypeStruct(tuple(m.shape), np.dtype(m.dtype))
                              for name, m in leaves.items()})
        restore_args = unflatten({name: ocp.RestoreArgs(restore_type=np.ndarray)
                                  for name in leaves})
    else:
        # A checkpoint of the other layer layout (T5Config.scan_layers) is restored as
        # stored, each array straight into its shards, then moved on device (exact copies).
        abstract = unflatten(layers.to_layout(flatten(wanted), found_scanned))
        check_shapes(flat_shapes(subtree), flat_shapes(abstract), item_dir, _PATH_FIX)
        restore_args = ocp.checkpoint_utils.construct_restore_args(abstract)
    with _reading(where):
        restored = handler.restore(item_dir, args=ocp.args.PyTreeRestore(
            item=_nest(root, abstract), restore_args=_nest(root, restore_args),
            partial_restore=True))
    for key in root:
        restored = restored[key]
    if wanted is not None and layers.is_scanned(flatten(wanted)) != found_scanned:
        restored = _to_layout_on_device(restored, wanted)
    return restored


def _to_layout_on_device(params: Any, wanted: Any) -> Any:
    """params in the other layer layout -> the layout and shardings of `wanted`."""
    scanned = layers.is_scanned(flatten(wanted))
    convert = lambda tree: unflatten(layers.to_layout(flatten(tree), scanned))
    shardings = jax.tree.map(lambda leaf: leaf.sharding, wanted)
    return jax.jit(convert, out_shardings=shardings)(params)


def _find_root(tree: Any, roots: Sequence[Sequence[str]]) -> tuple[tuple[str, ...] | None, Any]:
    for root in roots:
        node = tree
        for key in root:
            node = node.get(key) if isinstance(node, Mapping) else None
        if isinstance(node, Mapping):
            return tuple(root), node
    return None, None


def _nest(keys: Sequence[str], value: Any) -> Any:
    for key in reversed(keys):
        value = {key: value}
    return value


def resolve_initial_checkpoint(path: str, macro: str = "INITIAL_CHECKPOINT_PATH"
                               ) -> tuple[str, int]:
    """A run dir, its checkpoints/ dir or a step dir -> (checkpoints dir, newest step).

    `macro` names the setting the path came from, for the error message.
    """
    directory, steps = _candidate_steps(path, macro)
    return directory, steps[0]


def _candidate_steps(path: str, macro: str) -> tuple[str, list[int]]:
    """(checkpoints dir, steps to try newest first): all of a run, or the one step named."""
    root = epath.Path(absolute_path(path))
    for directory in (root / CHECKPOINT_SUBDIR, root):
        if directory.is_dir():
            steps = ocp.utils.checkpoint_steps(directory)
            if steps:
                return str(directory), sorted(steps, reverse=True)
    if root.name.isdigit() and root.is_dir():
        return str(root.parent), [int(root.name)]
    raise FileNotFoundError(
        f"{macro}={path!r} holds no flan_jax checkpoint. Give a run directory (MODEL_DIR of "
        "an earlier run), its checkpoints/ directory, or one step directory inside it.")


def read_newest(path: str, read: Callable[[str], T], macro: str) -> tuple[T, str, int]:
    """read(<step dir>) of the newest step of `path` that reads; (value, dir, step).

    `path` is a run dir, checkpoints/ dir (every step tried, newest first, damaged ones
    logged) or one step dir (only that step). Raises DamagedCheckpointError when none reads.
    """
    directory, steps = _candidate_steps(path, macro)
    damaged: list[tuple[int, DamagedCheckpointError]] = []
    for step in steps:
        try:
            value = read(os.path.join(directory, str(step)))
        except DamagedCheckpointError as error:
            logging.warning("%s; trying the previous checkpoint.", error)
            damaged.append((step, error))
            continue
        if damaged:
            logging.warning("Using step %d of %s; newer step(s) %s did not restore and were "
                            "left as they are.", step, directory,
                            ", ".join(str(s) for s, _ in damaged))
        return value, directory, step
    raise DamagedCheckpointError(_none_restores(
        directory, damaged, f"Point {macro} at a good copy of the checkpoint."))


def load_initial_params(path: str, abstract_params: Any,
                        macro: str = "INITIAL_CHECKPOINT_PATH") -> Any:
    """Only the params of another run's checkpoint, laid out by abstract_params' shardings."""
    params, _, _ = read_newest(
        path, lambda step_dir: read_param_tree(os.path.join(step_dir, STATE_ITEM),
                                               abstract=abstract_params), macro)
    return params


def load_params(path: str) -> tuple[dict[str, np.ndarray], str]:
    """A flan_jax checkpoint's params as {"a/b/c": float32 numpy array}, and its step dir.

    `path` may be a converted OUT_DIR, a run's MODEL_DIR, its checkpoints/ directory or one
    step directory. The params come in the unscanned layout ('encoder/layers_0/...', what
    exports name), whichever layout the checkpoint has. Peak memory: one copy of the params.
    """
    params, directory, step = read_newest(
        path, lambda step_dir: read_param_tree(os.path.join(step_dir, STATE_ITEM)),
        macro="checkpoint")
    flat = layers.to_unscanned(flatten(params))
    return ({name: np.asarray(array, np.float32) for name, array in flat.items()},
            f"{directory}/{step}")


def abstract_params(model: t5.Transformer) -> Any:
    """The model's params as ShapeDtypeStructs boxed with their logical axis names
    (eval_shape of init: no compute, no memory)."""
    tokens = jnp.ones((1, 1), jnp.int32)
    return jax.eval_shape(
        lambda rng: model.init(rng, tokens, tokens, tokens, enable_dropout=False)["params"],
        jax.random.PRNGKey(0))


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

    A run or checkpoints/ directory gives its newest step that restores. A prompt-tuning or
    LoRA run's checkpoint holds only its trainable part; the frozen base named in its run
    directory (flan_jax/peft.py) is loaded and merged in.
    """
    abstract, shardings = partitioning.param_layout(abstract_params(model), mesh, rules)
    config = model.config
    checkpoint_dir, _ = resolve_initial_checkpoint(checkpoint_path, macro="CHECKPOINT_PATH")
    run_dir = os.path.dirname(checkpoint_dir)
    record = peft.read_run_record(run_dir)
    if record is not None and not peft.is_peft(config):
        raise ValueError(
            f"{checkpoint_path} is a prompt-tuning / LoRA run (its {peft.BASE_POINTER_FILE}: "
            f"prompt_length={record['prompt_length']}, lora_rank={record['lora_rank']}) but "
            "the model config has neither. Add the run's settings, e.g. "
            f"--gin.t5.T5Config.prompt_length={record['prompt_length']} "
            f"--gin.t5.T5Config.lora_rank={record['lora_rank']} (and lora_alpha / "
            "lora_targets if the run changed them).")
    frozen_abstract = None
    if peft.is_peft(config):
        abstract, frozen_abstract = peft.split(abstract, config)
        base = peft.read_base_pointer(run_dir)
        if base is None:
            raise ValueError(
                f"The model config has a soft prompt or LoRA, but {run_dir} has no "
                f"{peft.BASE_POINTER_FILE} naming the frozen base model; give the "
                "MODEL_DIR of a prompt-tuning / LoRA run, or drop the prompt/LoRA "
                "settings to load a plain checkpoint.")
    with partitioning.sharding_context(mesh, rules):
        params, checkpoint_dir, step = read_newest(
            checkpoint_path,
            lambda step_dir: read_param_tree(os.path.join(step_dir, STATE_ITEM),
                                             abstract=abstract),
            macro="CHECKPOINT_PATH")
        if frozen_abstract is not None:
            params = peft.merge(params, load_initial_params(base, frozen_abstract))
    logging.info("Restored params of step %d from %s.", step, checkpoint_dir)
    return RestoredParams(params=params, shardings=shardings, step=step,
                          checkpoint_dir=checkpoint_dir)
