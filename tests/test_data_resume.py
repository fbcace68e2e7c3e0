"""BatchIterator's position: saved tf.data state, replay of older states, per-process shards."""
import logging
import os
import sys

import numpy as np
import pytest
import seqio
import tensorflow as tf

import tiny
from flan_jax import data

CONFIG = data.DatasetConfig(tiny.TEST_TASK, tiny.FEATURE_LENGTHS, batch_size=4, seed=0)


def _batches(iterator, n):
    return [next(iterator) for _ in range(n)]


def _assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=k)


def _save(iterator, directory) -> dict:
    """What a checkpoint keeps of one process's iterator: (JSON state, files in directory)."""
    os.makedirs(directory, exist_ok=True)
    for name, contents in iterator.pipeline_files().items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(contents)
    return iterator.state()


def test_saved_pipeline_state_is_the_position(tmp_path):
    straight = data.BatchIterator(CONFIG)
    _batches(straight, 7)
    state = _save(straight, tmp_path)
    assert state["batches_consumed"] == 7
    assert sorted(os.listdir(tmp_path)) == ["pipeline.data-00000-of-00001", "pipeline.index"]
    expected = _batches(straight, 3)

    resumed = data.BatchIterator(CONFIG)
    # The position comes from the files, not from the count: with the count zeroed, a replay
    # would start over at batch 1; the saved state continues at batch 8.
    resumed.restore({**state, "batches_consumed": 0}, str(tmp_path))
    _assert_same(_batches(resumed, 3), expected)
    with pytest.raises(AssertionError):
        _assert_same(_batches(data.BatchIterator(CONFIG), 3), expected)


def test_a_state_without_pipeline_files_resumes_by_replay(tmp_path):
    # A checkpoint written before pipeline files existed: the same JSON (older still, without
    # "prompt_slots") and no files.
    straight = data.BatchIterator(CONFIG)
    _batches(straight, 5)
    old = {k: v for k, v in straight.state().items() if k != "prompt_slots"}
    expected = _batches(straight, 2)
    for pipeline_dir in (None, str(tmp_path)):  # no directory, or one without the files
        resumed = data.BatchIterator(CONFIG)
        resumed.restore(old, pipeline_dir)
        assert resumed.batches_consumed == 5
        _assert_same(_batches(resumed, 2), expected)


def test_damaged_pipeline_files_raise(tmp_path):
    iterator = data.BatchIterator(CONFIG)
    _batches(iterator, 2)
    state = _save(iterator, tmp_path / "saved")
    path = tmp_path / "saved" / "pipeline.data-00000-of-00001"
    os.truncate(path, os.path.getsize(path) // 2)
    with pytest.raises(Exception):  # TensorFlow's error type depends on where the cut falls
        data.BatchIterator(CONFIG).restore(state, str(tmp_path / "saved"))


def test_a_changed_configuration_warns_and_replays_the_new_one(tmp_path, caplog):
    iterator = data.BatchIterator(CONFIG)
    _batches(iterator, 3)
    state = _save(iterator, tmp_path)
    other = data.DatasetConfig(tiny.TEST_TASK, tiny.FEATURE_LENGTHS, batch_size=4, seed=1)
    expected = _batches(data.BatchIterator(other), 4)[3:]
    resumed = data.BatchIterator(other)
    with caplog.at_level(logging.WARNING):
        resumed.restore(state, str(tmp_path))
    assert "The data configuration changed since the checkpoint" in caplog.text
    assert "'seed': (0, 1)" in caplog.text
    _assert_same(_batches(resumed, 1), expected)


def test_each_process_shard_resumes_from_its_own_files(tmp_path):
    config = data.DatasetConfig(tiny.TEST_TASK, tiny.FEATURE_LENGTHS, batch_size=8, seed=0)
    shards = [data.BatchIterator(config, process_index=i, process_count=2) for i in range(2)]
    states, expected = [], []
    for i, shard in enumerate(shards):
        _batches(shard, 4)
        states.append(_save(shard, tmp_path / str(i)))
        expected.append(_batches(shard, 2))
    with pytest.raises(AssertionError):  # the shards read different examples
        _assert_same(expected[0], expected[1])
    for i in range(2):
        resumed = data.BatchIterator(config, process_index=i, process_count=2)
        resumed.restore(states[i], str(tmp_path / str(i)))
        _assert_same(_batches(resumed, 2), expected[i])


GENERATOR_TASK = "flan_jax_test_reverse_from_generator"


def _generated_examples(split, shuffle_files=False, seed=None):
    def generate():
        for i in range(2000):
            yield {"inputs": f"reverse: {tiny.WORDS[i % 16]} {tiny.WORDS[(i * 7) % 16]}",
                   "targets": f"{tiny.WORDS[(i * 7) % 16]} {tiny.WORDS[i % 16]}"}
    signature = {"inputs": tf.TensorSpec([], tf.string), "targets": tf.TensorSpec([], tf.string)}
    return tf.data.Dataset.from_generator(generate, output_signature=signature)


def test_a_pipeline_with_python_state_saves_no_files_and_resumes_by_replay(caplog):
    """A from_generator source keeps its position in Python, which tf.data would silently
    restart on restore; part-way through it, a save writes no files, and resuming replays."""
    if GENERATOR_TASK not in seqio.TaskRegistry.names():
        vocab = seqio.ByteVocabulary()
        seqio.TaskRegistry.add(
            GENERATOR_TASK,
            source=seqio.FunctionDataSource(_generated_examples, splits=("train",),
                                            num_input_examples={"train": 2000}),
            preprocessors=[seqio.preprocessors.tokenize,
                           seqio.preprocessors.append_eos_after_trim],
            output_features={"inputs": seqio.Feature(vocab, add_eos=True),
                             "targets": seqio.Feature(vocab, add_eos=True)})
    # Unshuffled, so no shuffle buffer has drained the generator when the save comes.
    config = data.DatasetConfig(GENERATOR_TASK, tiny.FEATURE_LENGTHS, batch_size=4,
                                shuffle=False, seed=None)
    straight = data.BatchIterator(config)
    _batches(straight, 3)
    with caplog.at_level(logging.WARNING):
        assert straight.pipeline_files() == {}
    assert "cannot be checkpointed" in caplog.text and not straight.saves_pipeline
    state = straight.state()
    expected = _batches(straight, 2)
    resumed = data.BatchIterator(config)
    resumed.restore(state, pipeline_dir=None)
    _assert_same(_batches(resumed, 2), expected)


def test_resume_cost_tool_times_both_paths_and_checks_the_batch(capsys):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                    "tools"))
    import resume_cost
    rows = resume_cost.main(["--steps", "6", "3", "--replay-up-to", "3", "--mixture",
                             tiny.TEST_TASK, "--batch-size", "4", "--inputs", "48",
                             "--targets", "32"])
    assert [r["step"] for r in rows] == [3, 6]
    for row in rows:
        assert row["state_bytes"] > 0 and row["resume_saved_state_s"] > 0
    assert rows[0]["resume_replay_s"] > 0 and "resume_replay_s" not in rows[1]
    out = capsys.readouterr().out
    assert "load average" in out and "| 6 |" in out and "not run" in out
    replay_only = resume_cost.main(["--steps", "5", "--replay-only", "--mixture",
                                    tiny.TEST_TASK, "--batch-size", "4", "--inputs", "48",
                                    "--targets", "32"])
    assert replay_only == [{"step": 5, "resume_replay_s": replay_only[0]["resume_replay_s"]}]
    assert replay_only[0]["resume_replay_s"] > 0
    with pytest.raises(SystemExit):
        resume_cost.main(["--steps", "0"])
