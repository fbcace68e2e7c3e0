"""tools/compare_methods.py: instruction tuning vs prompt tuning vs LoRA, one command."""
import json
import os
import sys

import pytest
import seqio

import tiny  # noqa: F401  (conftest's 8 fake devices)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "tools"))
import compare_methods  # noqa: E402
import flan_reference  # noqa: E402

from flan_jax import peft  # noqa: E402
from tasks import mini  # noqa: E402


def test_one_command_trains_and_scores_all_three_methods(tmp_path, capsys):
    out = tmp_path / "compare"
    rows = compare_methods.main([
        "--out", str(out), "--it-steps", "2", "--peft-steps", "2", "--batch-size", "8",
        "--prompt-length", "4", "--lora-rank", "2", "--num-eval-examples", "6"])
    assert [r.method for r in rows] == ["instruction tuning", "prompt tuning", "LoRA"]
    base = compare_methods._tiny_config()
    assert rows[0].trainable_params == base.num_params()
    assert rows[1].trainable_params == 4 * base.emb_dim  # the prompt only
    assert 0 < rows[2].trainable_params == base.__class__(
        **{**base.__dict__, "lora_rank": 2}).num_peft_params() < rows[0].trainable_params
    assert [r.steps for r in rows] == [2, 2, 2]
    assert all(0.0 <= score <= 100.0 for r in rows for score in (r.heldout, r.seen))
    assert rows[0].trained_on == "all but entailment"
    assert rows[1].trained_on == rows[2].trained_on == "entailment (train split)"
    # Both parameter-efficient runs freeze the instruction-tuned model (its last step).
    for name in ("prompt_tuning", "LoRA"):
        record = json.loads((out / name / peft.BASE_POINTER_FILE).read_text())
        assert record["base_checkpoint"] == os.path.join(
            str(out), "instruction_tuning", "checkpoints", "2")
    printed = capsys.readouterr().out
    assert "| method | trained on | trainable params |" in printed
    assert "held-out entailment" in printed and "seen sentiment" in printed


def test_mini_split_names_the_held_out_clusters_mixtures():
    split = compare_methods.mini_split("entailment", "sentiment")
    def train_tasks(cluster):
        return {f"{d}_10templates" for d in mini.CLUSTERS[cluster]}

    trained = {t.name for t in seqio.get_mixture_or_task(split.it_mixture).tasks}
    assert trained and not trained & train_tasks("entailment")
    assert train_tasks("sentiment") <= trained
    assert {t.name for t in seqio.get_mixture_or_task(split.peft_mixture).tasks} == (
        train_tasks("entailment"))


def test_flan2021_split_is_flans_inter_cluster_split():
    """The names follow FLAN's task_splits (the reference table read from FLAN's code)."""
    split = compare_methods.flan2021_split("entailment", "sentiment")
    reference = flan_reference.load()["mixtures"]
    nli_datasets = {"anli_r1", "anli_r2", "anli_r3", "cb", "rte", "mnli_matched",
                    "mnli_mismatched", "qnli", "wnli", "snli"}  # FLAN's "nli" cluster
    assert {m.rsplit("_10templates", 1)[0] for m in reference[split.heldout_eval]} \
        == nli_datasets
    assert split.peft_mixture == split.heldout_eval
    assert set(reference[split.it_mixture]) == {
        t.name for t in seqio.get_mixture_or_task(split.it_mixture).tasks}
    assert not {m.rsplit("_10templates", 1)[0] for m in reference[split.it_mixture]} \
        & nli_datasets
    assert "sst2_10templates" in reference[split.seen_eval]  # FLAN's sentiment cluster
    assert split.eval_split == "test"  # FLAN's 'test' mapping, as flan2021_eval.gin
    assert split.feature_lengths == {"inputs": 1024, "targets": 256}


@pytest.mark.parametrize("argv, message", [
    (["--collection", "flan2021"], "give --base"),
    (["--cluster", "nli"], "not a mini cluster"),
    (["--cluster", "sentiment"], "must differ"),
    (["--vocabulary", "/no/such/spiece.model"], "is not a file"),
    (["--model-gin", "gin_configs/models/t5_1_1/nope.gin"], "--model-gin"),
])
def test_bad_flags_stop_before_training(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as stop:
        compare_methods.main(["--out", str(tmp_path / "x")] + argv)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
