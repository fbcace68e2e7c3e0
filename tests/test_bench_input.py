"""tools/bench_input.py: the input-pipeline benchmark runs end to end on a small vocabulary."""
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tools"))
import bench_input  # noqa: E402


@pytest.fixture(scope="module")
def small_vocabulary(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("spm") / "small.model")
    bench_input.build_vocabulary(path, pieces=300, max_lines=5000)
    return path


def test_main_times_packed_batches_and_prints_one_json_line(small_vocabulary, capsys):
    result = bench_input.main(["--vocabulary", small_vocabulary, "--batches", "3",
                               "--warmup", "1", "--train-step-s", "2.0"])
    stdout = capsys.readouterr().out
    assert stdout.count("\n") == 1 and json.loads(stdout) == result
    assert result["vocab_size"] == 300 + 100  # the pieces plus T5's sentinel ids
    assert result["token_slots_per_batch"] == 16 * (256 + 64)
    # Packing fills most of every row with real tokens from many short examples.
    assert 0.5 * 5120 < result["real_tokens_per_batch"] <= 5120
    assert result["examples_per_batch"] > 16
    assert result["chars_per_token"] > 1.0  # pieces longer than single characters
    assert result["train_batches_per_s"] == 0.5
    assert result["times_train_consumption"] == pytest.approx(
        result["batches_per_s"] * 2.0, abs=0.1)
    assert result["tokens_per_s"] == pytest.approx(
        result["real_tokens_per_batch"] * result["batches_per_s"], rel=0.01)


def test_a_missing_vocabulary_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit) as error:
        bench_input.main(["--vocabulary", str(tmp_path / "nope.model")])
    assert error.value.code == 2
    assert "nope.model" in capsys.readouterr().err
