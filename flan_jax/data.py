"""SeqIO mixtures -> packed per-process batches -> global jax.Arrays on the mesh.

Each process reads its own shard of every task (seqio.ShardInfo(process_index, process_count))
and batches `batch_size // process_count` rows; jax.make_array_from_process_local_data then
stitches the per-process rows into one global [batch, ...] array sharded over 'data'.

Resumption: a checkpoint holds each process's tf.data iterator state, as T5X's does (a
tf.train.Checkpoint of the iterator, per process), beside a small JSON state. Restoring builds
the pipeline and reads that state back instead of re-reading the batches already seen, so its
cost does not grow with the step (tools/resume_cost.py; README "Resuming"), and a resumed run
sees exactly the batches the straight run saw. The alternative, a deterministic index-based pipeline (example i of the
mixture computable without reading examples 0..i-1), would have meant replacing seqio's
mixing, shuffling and packing with our own: a different data order from the one every run so
far has trained on, and a second pipeline beside seqio's for old checkpoints. The price of the
tf.data state is its size, which does not grow with the step but with the buffers: measured
on mini-FLAN's `make run` mixture (10 tasks, batch 16 x (256, 64)) it is 17.6 MiB per process
at step 100 and 19.0 MiB at step 10,000, of which about 12 MiB are seqio's shuffle buffers
(1,000 examples per task; unshuffled, the state is 5.6 MiB: seqio's in-memory cache of sources
under 10,000 examples, packing and prefetch buffers). A mixture of N tasks holds N x 1,000
examples in shuffle buffers per process. Capturing the state blocks a save for 0.7-3.5 s here
(by load); writing it happens in the background with the rest of the checkpoint.

The JSON state (batches read plus what they were read from) is what checkpoints held before
the tf.data state existed. Such a checkpoint, a changed data configuration (warned about), or
a pipeline that cannot be saved (Python state, e.g. a tf.data.Dataset.from_generator source
part-way through) resume the old way: rebuild the pipeline and skip every batch already read,
which re-reads and re-tokenizes them all but is just as exact.
"""
from __future__ import annotations

import dataclasses
import difflib
import logging
import os
import uuid
from typing import Any, Mapping

import jax
import numpy as np

from flan_jax import console

# TF only feeds data here; console keeps it off the accelerators that JAX owns.
tf = console.import_tensorflow()
import seqio  # noqa: E402  (after TensorFlow has loaded quietly)

Batch = dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class DatasetConfig:
    """Which examples to read and how to batch them (T5X's DatasetConfig, trimmed).

    Attributes:
      mixture_or_task_name: a registered seqio Task or Mixture (register by importing tasks).
      task_feature_lengths: maximum lengths per task feature, e.g. {"inputs": 512,
        "targets": 114}; longer examples are truncated by the task's preprocessors.
      split: dataset split.
      batch_size: GLOBAL batch size (rows across all processes), after packing.
      shuffle: shuffle examples (deterministically when seed is set).
      seed: shuffle / mixing seed; None makes the order irreproducible and the iterator
        position meaningless, so training requires a seed.
      use_cached: read seqio's offline cache (USE_CACHED_TASKS).
      pack: pack several examples per row (segment ids and positions keep them apart).

    Validated once, here: a DatasetConfig that exists names a registered task or mixture
    whose features TASK_FEATURE_LENGTHS gives exactly, with a usable batch size and seed.
    """

    mixture_or_task_name: str
    task_feature_lengths: Mapping[str, int]
    split: str = "train"
    batch_size: int = 8
    shuffle: bool = True
    seed: int | None = 0
    use_cached: bool = False
    pack: bool = True

    def __post_init__(self):
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) \
                or self.batch_size < 1:
            raise ValueError(f"BATCH_SIZE must be a positive integer, got {self.batch_size!r}.")
        if self.seed is None and self.shuffle:
            raise ValueError("RANDOM_SEED is None: training shuffles its data and needs a seed "
                             "so that the data order (and resumption) is reproducible.")
        check_feature_length_values(self.task_feature_lengths)
        check_feature_lengths(get_mixture_or_task(self.mixture_or_task_name),
                              self.task_feature_lengths)


def check_feature_length_values(task_feature_lengths: Any) -> None:
    """TASK_FEATURE_LENGTHS must map feature names to positive integer lengths."""
    if not isinstance(task_feature_lengths, Mapping) or not all(
            isinstance(k, str) for k in task_feature_lengths):
        raise ValueError(
            f"TASK_FEATURE_LENGTHS={task_feature_lengths!r} must be a dict of feature name -> "
            "length in tokens, e.g. --gin.TASK_FEATURE_LENGTHS=\"{'inputs': 512, "
            "'targets': 128}\".")
    bad = {k: v for k, v in task_feature_lengths.items()
           if isinstance(v, bool) or not isinstance(v, int) or v < 1}
    if bad:
        raise ValueError(f"TASK_FEATURE_LENGTHS values must be positive integers: {bad}.")


def get_mixture_or_task(name: str) -> seqio.Task | seqio.Mixture:
    """Looks a name up in seqio's registries; unknown names list the closest registered ones."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"MIXTURE_OR_TASK_NAME={name!r} is not a task or mixture name: give a "
                         "registered name as a string, e.g. "
                         "--gin.MIXTURE_OR_TASK_NAME=\"'mini_flan_heldout_entailment_train'\".")
    try:
        return seqio.get_mixture_or_task(name)
    except ValueError:
        pass
    known = sorted(set(seqio.MixtureRegistry.names()) | set(seqio.TaskRegistry.names()))
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    hint = (f"Closest registered names: {', '.join(close)}." if close else
            f"{len(known)} names are registered" + (f", e.g. {', '.join(known[:5])}." if known
                                                    else "."))
    raise ValueError(
        f"Unknown mixture or task {name!r}. {hint} Tasks register when their module is "
        "imported (the run gin files import `tasks`); check the spelling of "
        "MIXTURE_OR_TASK_NAME.")


def check_feature_lengths(provider: seqio.Task | seqio.Mixture,
                          task_feature_lengths: Mapping[str, int]) -> None:
    """TASK_FEATURE_LENGTHS must name exactly the features the task produces."""
    features = set(provider.output_features)
    given = set(task_feature_lengths)
    if given - features:
        raise ValueError(
            f"TASK_FEATURE_LENGTHS has {sorted(given - features)}, which "
            f"{provider.name!r} does not produce; its features are {sorted(features)}. "
            f"Use e.g. --gin.TASK_FEATURE_LENGTHS=\"{ {f: 512 for f in sorted(features)} }\".")
    if features - given:
        raise ValueError(
            f"TASK_FEATURE_LENGTHS lacks {sorted(features - given)} for {provider.name!r}; "
            f"give a length for each of {sorted(features)}.")


def vocab_size(provider: seqio.Task | seqio.Mixture) -> int:
    """The largest vocabulary over the provider's output features."""
    return max(f.vocabulary.vocab_size for f in provider.output_features.values())


def check_vocabulary_fits(mixture_or_task_name: str, model_vocab_size: int) -> None:
    """The model's embedding must have a row for every id the data can hold."""
    provider = seqio.get_mixture_or_task(mixture_or_task_name)
    if vocab_size(provider) > model_vocab_size:
        raise ValueError(
            f"{provider.name!r} uses a vocabulary of {vocab_size(provider)} ids but the "
            f"model's vocab_size is {model_vocab_size}; raise T5Config.vocab_size (a "
            "multiple of 128 keeps the 'vocab' axis shardable).")


# Any id > 0 works (the masks treat nonzero ids as real tokens; the model overwrites the slot's
# embedding). EOS is chosen so that a decoded batch reads as empty slots, not as text.
PROMPT_SLOT_ID = 1


class PromptSlotsFeatureConverter(seqio.EncDecFeatureConverter):
    """EncDecFeatureConverter that packs soft-prompt slots with every example.

    Soft prompt tuning puts prompt_length learned vectors in front of each example's input
    (t5.T5Config.prompt_length). Unpacked, the model concatenates them itself. Packed, each
    segment needs its own copy, so this converter prepends prompt_length PROMPT_SLOT_ID
    tokens to every example's "inputs" before packing; the model finds the slots by their
    in-segment position (encoder_positions < prompt_length) and writes the prompt there
    (t5.Transformer.encode). Each example keeps its full "inputs" budget: the encoder
    features are prompt_length longer than TASK_FEATURE_LENGTHS["inputs"], exactly as the
    unpacked model's encoder output is.

    Example: prompt_length 2, TASK_FEATURE_LENGTHS {"inputs": 8, "targets": 5}, examples
    {"inputs": [7, 5, 1], "targets": [3, 1]} and {"inputs": [9, 1], "targets": [4, 1]}:
      encoder_input_tokens [1, 1, 7, 5, 1, 1, 1, 9, 1, 0]   (length 8 + 2)
      encoder_segment_ids  [1, 1, 1, 1, 1, 2, 2, 2, 2, 0]
      encoder_positions    [0, 1, 2, 3, 4, 0, 1, 2, 3, 0]   (< 2: a prompt slot)
    and the decoder features exactly as seqio.EncDecFeatureConverter(pack=True) makes them.
    """

    def __init__(self, prompt_length: int, **kwargs):
        if isinstance(prompt_length, bool) or not isinstance(prompt_length, int) \
                or prompt_length < 1:
            raise ValueError(f"PromptSlotsFeatureConverter needs prompt_length >= 1, got "
                             f"{prompt_length!r} (without a soft prompt use "
                             "seqio.EncDecFeatureConverter).")
        super().__init__(pack=True, **kwargs)
        self.prompt_length = prompt_length

    def _with_slots(self, task_feature_lengths: Mapping[str, int]) -> dict[str, int]:
        return {**task_feature_lengths,
                "inputs": task_feature_lengths["inputs"] + self.prompt_length}

    def _convert_features(self, ds: tf.data.Dataset,
                          task_feature_lengths: Mapping[str, int]) -> tf.data.Dataset:
        slots = tf.fill([self.prompt_length], tf.constant(PROMPT_SLOT_ID, tf.int32))

        def add_slots(features):
            inputs = features["inputs"]
            return {**features, "inputs": tf.concat([tf.cast(slots, inputs.dtype), inputs], 0)}

        ds = ds.map(add_slots, num_parallel_calls=tf.data.AUTOTUNE)
        return super()._convert_features(ds, self._with_slots(task_feature_lengths))

    def get_model_feature_lengths(self, task_feature_lengths: Mapping[str, int]
                                  ) -> Mapping[str, int]:
        return super().get_model_feature_lengths(self._with_slots(task_feature_lengths))


def feature_converter(pack: bool, prompt_length: int = 0) -> seqio.FeatureConverter:
    """The train pipeline's converter: packed or not, with soft-prompt slots when packed."""
    if pack and prompt_length:
        return PromptSlotsFeatureConverter(prompt_length)
    return seqio.EncDecFeatureConverter(pack=pack)


# tf.train.Checkpoint names the files of a saved pipeline after this prefix.
_PIPELINE_PREFIX = "pipeline"
# Scratch space in TensorFlow's in-memory file system: a save captures the pipeline there, in
# the caller's thread, so that the files can be written while the iterator moves on.
_SCRATCH = "ram://flan_jax_batch_iterator"


class BatchIterator:
    """This process's packed batches, as numpy dicts, with a checkpointable position.

    Each batch maps feature name -> [batch_size // process_count, length] int32 array.
    The config has validated itself (DatasetConfig.__post_init__). prompt_length is the
    model's (T5Config.prompt_length, owned there): packed rows then carry prompt slots
    (PromptSlotsFeatureConverter) and encoder features are that much longer.

    Its position has two parts (see the module docstring): state(), a small JSON dict that
    process 0 writes, and pipeline_files(), this process's tf.data iterator state, which
    every process writes for itself. restore() takes both back.
    """

    def __init__(self, config: DatasetConfig, start_batch: int = 0,
                 process_index: int | None = None, process_count: int | None = None,
                 prompt_length: int = 0):
        self.config = config
        self.prompt_length = prompt_length
        self.process_index = jax.process_index() if process_index is None else process_index
        self.process_count = jax.process_count() if process_count is None else process_count
        if config.batch_size % self.process_count:
            raise ValueError(f"batch_size {config.batch_size} is not divisible by the "
                             f"{self.process_count} processes.")
        self.local_batch_size = config.batch_size // self.process_count
        self._provider = seqio.get_mixture_or_task(config.mixture_or_task_name)
        self.batches_consumed = start_batch
        # Built on first use, so that a restore() right after construction (every resume)
        # builds seqio's pipeline once, not twice.
        self._iterator: tf.data.Iterator | None = None
        self.saves_pipeline = True  # until a save meets Python state (pipeline_files)

    def _build(self, start_batch: int) -> tf.data.Iterator:
        c = self.config
        ds = seqio.get_dataset(
            self._provider,
            task_feature_lengths=dict(c.task_feature_lengths),
            feature_converter=feature_converter(c.pack, self.prompt_length),
            dataset_split=c.split,
            use_cached=c.use_cached,
            shuffle=c.shuffle,
            num_epochs=None,  # repeat; the train loop decides when to stop
            shard_info=seqio.ShardInfo(self.process_index, self.process_count),
            seed=c.seed,
            verbose=False,
        )
        ds = ds.batch(self.local_batch_size, drop_remainder=True)
        if start_batch:
            ds = ds.skip(start_batch)  # the replay path: re-reads every skipped example
        ds = ds.prefetch(tf.data.AUTOTUNE)
        # External state (e.g. a from_generator source's Python generator) must make a save
        # fail, so the run falls back to replay: tf.data's WARN and IGNORE policies would
        # save without it and restart it on restore, a silently different data order.
        options = tf.data.Options()
        options.experimental_external_state_policy = \
            tf.data.experimental.ExternalStatePolicy.FAIL
        return iter(ds.with_options(options))

    def _pipeline(self) -> tf.data.Iterator:
        if self._iterator is None:
            self._iterator = self._build(self.batches_consumed)
        return self._iterator

    def __iter__(self) -> "BatchIterator":
        return self

    def __next__(self) -> Batch:
        batch = next(self._pipeline())
        self.batches_consumed += 1
        return {k: v.numpy().astype(np.int32) for k, v in batch.items()}

    def state(self) -> dict[str, Any]:
        """JSON-serialisable position plus what it is a position in (checked on restore)."""
        c = self.config
        return {
            "batches_consumed": self.batches_consumed,
            "mixture_or_task_name": c.mixture_or_task_name,
            "split": c.split,
            "seed": c.seed,
            "batch_size": c.batch_size,
            "task_feature_lengths": dict(c.task_feature_lengths),
            "process_count": self.process_count,
            "pack": c.pack,
            "prompt_slots": self.prompt_length if c.pack else 0,
        }

    def pipeline_files(self) -> dict[str, bytes]:
        """This process's tf.data iterator state, as {file name: contents}.

        The files of a tf.train.Checkpoint of the iterator (shuffle buffers, mixing and
        packing state, the in-memory cache of small sources; sizes in the module docstring),
        captured now, so the caller may write them while iteration continues. Written to one
        directory, restore() reads them back. Empty when the pipeline holds Python state
        (e.g. a tf.data.Dataset.from_generator source part-way through): from then on this
        iterator saves nothing, and a resume replays.
        """
        if not self.saves_pipeline:
            return {}
        try:
            return self._capture_pipeline()
        except (tf.errors.FailedPreconditionError, tf.errors.UnimplementedError) as error:
            self.saves_pipeline = False
            logging.warning(
                "The input pipeline of %r cannot be checkpointed (%s); from now on its "
                "checkpoints hold only the number of batches read, and a resumed run re-reads "
                "them all.", self.config.mixture_or_task_name,
                str(error).strip().splitlines()[0][:200])
            return {}

    def _capture_pipeline(self) -> dict[str, bytes]:
        scratch = f"{_SCRATCH}/{uuid.uuid4().hex}"
        try:
            tf.train.Checkpoint(ds=self._pipeline()).write(f"{scratch}/{_PIPELINE_PREFIX}")
            files = {}
            for path in tf.io.gfile.glob(f"{scratch}/*"):
                with tf.io.gfile.GFile(path, "rb") as f:
                    files[os.path.basename(path)] = f.read()
            return files
        finally:
            if tf.io.gfile.exists(scratch):
                tf.io.gfile.rmtree(scratch)

    def restore(self, state: Mapping[str, Any], pipeline_dir: str | None = None) -> None:
        """Moves to the position `state` describes; warns when the data config has changed.

        Args:
          state: a state() from the checkpoint (any version of it).
          pipeline_dir: where this process's pipeline_files() were written. When it holds
            them and the configuration is unchanged, they are the position (and a damaged
            file raises: tf.errors.DataLossError, ...). Otherwise (a checkpoint written before
            they existed, a pipeline that could not be saved, a changed configuration) the
            pipeline is rebuilt and skips batches_consumed batches: a replay.
        """
        consumed = int(state["batches_consumed"])
        # A state written before "prompt_slots" existed had none.
        defaults = {"prompt_slots": 0}
        changed = {k: (state.get(k, defaults.get(k)), v) for k, v in self.state().items()
                   if k != "batches_consumed" and state.get(k, defaults.get(k)) != v}
        if changed:
            logging.warning(
                "The data configuration changed since the checkpoint ({old, new}: %s); "
                "skipped %d batches of the new configuration, which is not the same position "
                "in the data.", changed, consumed)
        saved = None if pipeline_dir is None else os.path.join(pipeline_dir, _PIPELINE_PREFIX)
        if saved and not changed and tf.io.gfile.exists(f"{saved}.index"):
            self._iterator = self._build(0)
            tf.train.Checkpoint(ds=self._iterator).read(saved).assert_consumed()
        else:
            logging.info("Resuming the data at batch %d by replaying it from the start.",
                         consumed)
            self._iterator = self._build(consumed)
        self.batches_consumed = consumed


def to_global_arrays(local_batch: Batch, sharding: jax.sharding.Sharding) -> dict[str, jax.Array]:
    """Per-process rows -> global arrays [global_batch, ...] laid out by `sharding`."""
    return {k: jax.make_array_from_process_local_data(sharding, v)
            for k, v in local_batch.items()}
