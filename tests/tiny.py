"""Tiny configurations and a tiny deterministic seqio task shared by the tests.

A module rather than fixtures so that test subprocesses (other device counts, other
processes) can import it too.
"""
import random

import seqio
import tensorflow as tf

from flan_jax import checkpointing, data, optim, partitioning, trainer
from flan_jax.models import t5

TEST_TASK = "flan_jax_test_reverse"
FEATURE_LENGTHS = {"inputs": 48, "targets": 32}

WORDS = ("alpha", "brave", "cloud", "delta", "ember", "frost", "grove", "haven", "ivory",
         "jolly", "karma", "lemon", "maple", "noble", "ocean", "pearl")


def _reverse_examples(split: str, shuffle_files: bool = False, seed=None) -> tf.data.Dataset:
    """'reverse: w1 w2 ...' -> the words in reverse order; fixed per split."""
    rng = random.Random({"train": 0, "validation": 1}[split])
    inputs, targets = [], []
    for _ in range(512 if split == "train" else 64):
        words = [rng.choice(WORDS) for _ in range(rng.randint(1, 6))]
        inputs.append("reverse: " + " ".join(words))
        targets.append(" ".join(reversed(words)))
    return tf.data.Dataset.from_tensor_slices({"inputs": inputs, "targets": targets})


def register_test_task() -> None:
    if TEST_TASK in seqio.TaskRegistry.names():
        return
    vocab = seqio.ByteVocabulary()
    seqio.TaskRegistry.add(
        TEST_TASK,
        source=seqio.FunctionDataSource(_reverse_examples, splits=("train", "validation"),
                                        num_input_examples={"train": 512, "validation": 64}),
        preprocessors=[seqio.preprocessors.tokenize, seqio.CacheDatasetPlaceholder(),
                       seqio.preprocessors.append_eos_after_trim],
        output_features={"inputs": seqio.Feature(vocab, add_eos=True),
                         "targets": seqio.Feature(vocab, add_eos=True)})


register_test_task()


def model_config(**overrides) -> t5.T5Config:
    fields = dict(vocab_size=384, emb_dim=32, num_heads=2, num_encoder_layers=2,
                  num_decoder_layers=2, head_dim=16, mlp_dim=64, dropout_rate=0.0,
                  dtype="float32")
    fields.update(overrides)
    return t5.T5Config(**fields)


def train_kwargs(model_dir, *, steps=4, batch_size=8, num_partitions=1,
                 parameter_sharding=False, save_every=100, **overrides) -> dict:
    """Keyword arguments for flan_jax.train.train on the test task."""
    kwargs = dict(
        model_dir=str(model_dir),
        model_config=model_config(),
        train_dataset=data.DatasetConfig(TEST_TASK, FEATURE_LENGTHS, batch_size=batch_size,
                                         seed=0),
        train_steps=steps,
        optimizer=optim.OptimizerConfig(learning_rate=0.01),
        loss=trainer.LossConfig(),
        partitioning_config=partitioning.PartitioningConfig(num_partitions, parameter_sharding),
        checkpoint=checkpointing.CheckpointConfig(save_every_steps=save_every, keep=None,
                                                  async_save=True),
        log_every_steps=1,
        random_seed=0,
        progress_bar=False,
    )
    kwargs.update(overrides)
    return kwargs
