"""Tests for the offline mini-FLAN tasks and mixtures (tasks/mini.py)."""
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import seqio

import tasks  # noqa: F401  (registers everything)
from tasks import mini
from tasks.flan import registration, reporting

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FEATURE_LENGTHS = {"inputs": 256, "targets": 64}
PLACEHOLDER = re.compile(r"\{[A-Za-z_]\w*\}")
EOS_ID = 1


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


@pytest.fixture(scope="module")
def validation_examples():
    """Preprocessed validation examples of every task, read once through seqio."""
    examples = {}
    for name in mini.DATASET_NAMES:
        ds = seqio.get_mixture_or_task(mini.train_task_name(name)).get_dataset(
            FEATURE_LENGTHS, split="validation", shuffle=False)
        examples[name] = list(ds.as_numpy_iterator())
    return examples


# --- Structure ----------------------------------------------------------------


def test_clusters_tasks_and_templates():
    assert set(mini.CLUSTERS) == {
        "arithmetic", "string_editing", "sentiment", "entailment", "extractive_qa", "translation"}
    assert all(len(members) >= 2 for members in mini.CLUSTERS.values())
    assert len(set(mini.DATASET_NAMES)) == len(mini.DATASET_NAMES) >= 12
    registered = set(seqio.TaskRegistry.names())
    for name in mini.DATASET_NAMES:
        assert name.startswith("mini_") and f"{name}_10templates" in registered
        assert registration.REGISTERED[name].collection == mini.COLLECTION
        assert len(mini.PATTERNS[name]) == len(mini.TEMPLATES[name]) == 10
        assert len(set(mini.PATTERNS[name])) == 10, f"{name} repeats a template"
        # The summary finds turned-around templates by content, as for FLAN's datasets:
        # mini-FLAN's are the last two of every list (module docstring).
        assert reporting.turned_around(name) == (8, 9), name


def test_classification_templates_offer_options_unless_turned_around():
    for cluster in ("sentiment", "entailment"):
        for name in mini.CLUSTERS[cluster]:
            assert len(mini.dataset_options(name)) >= 2
            for i, template in enumerate(mini.TEMPLATES[name]):
                asks_for_answer = i not in reporting.turned_around(name)
                assert template.uses_options == asks_for_answer, (name, i)
                assert (template.target == "{answer}") == asks_for_answer, (name, i)


def _variants(dataset: str) -> set[str]:
    """The task names registered for `dataset`, with the dataset name cut off."""
    return {t[len(dataset):] for t in registration.REGISTERED[dataset].tasks}


def test_mini_flan_registers_through_the_flan_factory():
    # The same variants as a FLAN dataset of the same kind (RTE: classification, 10
    # templates; SQuAD v1: generation, 10 templates), from the same factory.
    for name in mini.DATASET_NAMES:
        like = "rte" if mini.dataset_options(name) else "squad_v1"
        assert len(registration.REGISTERED[like].templates) == 10
        assert _variants(name) == _variants(like), name
    names = registration.REGISTERED["mini_nli"].tasks
    assert {"mini_nli_type_3_scoring_eval", "mini_nli_type_3_three_shot", "mini_nli_no_template",
            "mini_nli_type_0_score_flan_no_options", "mini_nli_10templates_scoring_eval"} <= set(
                names)
    assert "mini_addition_type_0_scoring_eval" not in registration.REGISTERED[
        "mini_addition"].tasks  # no options, no rank classification


def test_round_robin_scoring_task_scores_every_option_of_every_example():
    task = seqio.get_mixture_or_task("mini_rte_10templates_scoring_eval")
    rows = list(task.get_dataset(FEATURE_LENGTHS, split="validation",
                                 shuffle=False).as_numpy_iterator())
    raw = mini.generate_examples("mini_rte", "validation")
    options = mini.dataset_options("mini_rte")
    assert len(rows) == len(raw) * len(options)  # turned-around templates too, as FLAN
    for row in rows:
        example, option = row["idx"]
        assert _text(row["targets_pretokenized"]) == options[option]
        assert row["is_correct"] == (options[option] == raw[example]["answer"])
        # Round robin over the ten templates, as the `_10templates` task reads them.
        assert row["template_idx"] == example % 10
    # The summary leaves the turned-around templates out of both round-robin tasks.
    excluded = reporting.excluded_templates()
    assert excluded["mini_rte_10templates_scoring_eval"] == excluded[
        "mini_rte_10templates"] == (8, 9)


# --- Examples -----------------------------------------------------------------


def test_every_task_yields_complete_formatted_examples(validation_examples):
    for name, examples in validation_examples.items():
        assert len(examples) == mini.SPLIT_SIZES["validation"], name
        for ex in examples:
            inputs, targets = _text(ex["inputs_pretokenized"]), _text(ex["targets_pretokenized"])
            assert inputs.strip() and targets.strip(), (name, ex)
            assert not PLACEHOLDER.search(inputs + targets), (name, inputs, targets)
            assert ex["targets"][-1] == EOS_ID and ex["inputs"][-1] == EOS_ID
        used = {int(ex["template_idx"]) for ex in examples}
        assert used == set(range(10)), f"{name}: round robin should reach every template"


def test_classification_targets_are_options(validation_examples):
    for cluster in ("sentiment", "entailment"):
        for name in mini.CLUSTERS[cluster]:
            options = set(mini.dataset_options(name))
            answers = set()
            for ex in validation_examples[name]:
                assert {_text(o) for o in ex["options"]} == options
                if int(ex["template_idx"]) not in reporting.turned_around(name):
                    answers.add(_text(ex["targets_pretokenized"]))
            assert answers == options, f"{name}: every label should occur"


def test_labels_are_roughly_balanced():
    for cluster in ("sentiment", "entailment"):
        for name in mini.CLUSTERS[cluster]:
            labels = [ex["answer"] for ex in mini.generate_examples(name, "train")]
            shares = [labels.count(o) / len(labels) for o in mini.dataset_options(name)]
            assert min(shares) > 0.5 / len(shares), (name, shares)


def test_generated_answers_are_correct():
    for ex in mini.generate_examples("mini_addition", "validation"):
        assert int(ex["a"]) + int(ex["b"]) == int(ex["answer"])
    for ex in mini.generate_examples("mini_subtraction", "validation"):
        assert int(ex["a"]) - int(ex["b"]) == int(ex["answer"]) >= 0
    for ex in mini.generate_examples("mini_reverse_word", "validation"):
        assert ex["answer"] == ex["word"][::-1]
    for ex in mini.generate_examples("mini_drop_vowels", "validation"):
        assert ex["answer"] and not set("aeiou") & set(ex["answer"])
    for name in mini.CLUSTERS["extractive_qa"]:
        for ex in mini.generate_examples(name, "validation"):
            assert ex["answer"] in ex["context"], (name, ex)
    for name in mini.CLUSTERS["translation"]:
        for ex in mini.generate_examples(name, "validation"):
            assert len(ex["english"].split()) == len(ex["lomi"].split())


# --- Determinism and splits ---------------------------------------------------


def test_generation_is_deterministic():
    first = {name: mini.generate_examples(name, "validation") for name in mini.DATASET_NAMES}
    mini.generate_examples.cache_clear()
    for name in mini.DATASET_NAMES:
        assert mini.generate_examples(name, "validation") == first[name], name
    # Pinned so that an accidental change of the data (seed, generator) shows up.
    assert mini.generate_examples("mini_addition", "validation")[0] == GOLDEN_ADDITION
    assert mini.generate_examples("mini_rte", "train")[0] == GOLDEN_RTE


GOLDEN_ADDITION = {"a": "62", "b": "97", "answer": "159"}
GOLDEN_RTE = {"premise": "Zeno, a miner, lives in Marrowby, which is in Corvania.",
              "hypothesis": "Marrowby is in Rovenia.", "answer": "no"}


def test_seqio_reads_are_repeatable():
    task = seqio.get_mixture_or_task("mini_nli_10templates")

    def read(**kwargs):
        ds = task.get_dataset(FEATURE_LENGTHS, split="validation", **kwargs)
        return [_text(ex["inputs_pretokenized"]) for ex in ds.as_numpy_iterator()]

    assert read(shuffle=False) == read(shuffle=False)
    shuffled = read(shuffle=True, seed=3)
    assert shuffled == read(shuffle=True, seed=3)
    assert shuffled != read(shuffle=False) and sorted(shuffled) == sorted(read(shuffle=False))


def test_splits_are_sized_unique_and_disjoint():
    for name in mini.DATASET_NAMES:
        keys = {}
        for split, size in mini.SPLIT_SIZES.items():
            examples = mini.generate_examples(name, split)
            keys[split] = {tuple(sorted(ex.items())) for ex in examples}
            assert len(keys[split]) == len(examples) == size, (name, split)
        assert not keys["train"] & keys["validation"], name
        assert not keys["train"] & keys["test"], name
        assert not keys["validation"] & keys["test"], name
        # The text a model reads is disjoint too, e.g. a QA passage never
        # reappears in test with another question.
        for field in ("word", "sentence", "context", "english"):
            if field in mini.generate_examples(name, "train")[0]:
                seen = {s: {ex[field] for ex in mini.generate_examples(name, s)}
                        for s in mini.SPLIT_SIZES}
                assert not seen["train"] & (seen["validation"] | seen["test"]), (name, field)
                assert not seen["validation"] & seen["test"], (name, field)


# --- Mixtures -----------------------------------------------------------------


def _mixture_tasks(name):
    return {t.name for t in seqio.get_mixture_or_task(name).tasks}


def test_heldout_mixtures_hold_out_exactly_one_cluster():
    def train(datasets):
        return {f"{d}_10templates" for d in datasets}

    everything = set(mini.DATASET_NAMES)
    assert _mixture_tasks("mini_flan_all_train") == train(everything)
    for cluster, members in mini.CLUSTERS.items():
        assert _mixture_tasks(f"mini_flan_heldout_{cluster}_train") == train(
            everything - set(members))
        assert _mixture_tasks(f"mini_flan_heldout_{cluster}_eval") == train(members)
    assert mini.heldout_train_mixture("entailment") == "mini_flan_heldout_entailment_train"


def test_mixing_rates_are_examples_proportional_and_capped():
    mixture = seqio.get_mixture_or_task("mini_flan_heldout_entailment_train")
    for task in mixture.tasks:
        assert mixture.get_rate(task) == min(mini.SPLIT_SIZES["train"], mini.MIXING_CAP)


def test_reimport_replaces_registrations_without_error():
    # In a fresh interpreter: reloading tasks.mini here would give its gin-facing functions
    # (mini.eval_clusters, bound by mini_cpu_eval.gin) new identities, and gin refuses a second
    # function under a registered name for every later test in this worker process.
    script = textwrap.dedent("""
        import importlib
        import seqio
        import tasks
        from tasks import mini
        before = seqio.get_mixture_or_task("mini_addition_10templates")
        importlib.reload(mini)
        importlib.reload(mini)
        after = seqio.get_mixture_or_task("mini_addition_10templates")
        assert after is not before
        mixture = seqio.get_mixture_or_task("mini_flan_heldout_entailment_train")
        members = {task.name for task in mixture.tasks}
        assert members == {mini.train_task_name(d) for d in mini.DATASET_NAMES
                           if d not in mini.CLUSTERS["entailment"]}, members
        print("reimport ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "reimport ok" in result.stdout


def test_packed_mixture_batches_for_the_encoder_decoder():
    ds = seqio.get_dataset(
        "mini_flan_heldout_entailment_train",
        task_feature_lengths=FEATURE_LENGTHS,
        dataset_split="train",
        shuffle=True,
        seed=0,
        feature_converter=seqio.EncDecFeatureConverter(pack=True),
    )
    batch = next(ds.batch(8, drop_remainder=True).as_numpy_iterator())
    expected = {
        "encoder_input_tokens": 256, "encoder_segment_ids": 256, "encoder_positions": 256,
        "decoder_input_tokens": 64, "decoder_target_tokens": 64, "decoder_segment_ids": 64,
        "decoder_positions": 64, "decoder_loss_weights": 64,
    }
    assert {k: v.shape for k, v in batch.items()} == {k: (8, n) for k, n in expected.items()}
    assert batch["encoder_segment_ids"].max() >= 2, "short examples should be packed together"
    assert np.all((batch["decoder_loss_weights"] > 0) == (batch["decoder_target_tokens"] > 0))


# --- Lengths ------------------------------------------------------------------


def test_most_examples_fit_the_default_feature_lengths(validation_examples):
    # The byte vocabulary makes one token per byte; EOS takes one more slot.
    inputs = [len(ex["inputs_pretokenized"]) for exs in validation_examples.values() for ex in exs]
    targets = [len(ex["targets_pretokenized"])
               for exs in validation_examples.values() for ex in exs]
    assert np.mean(np.array(inputs) < 256) >= 0.99
    assert np.mean(np.array(targets) < 64) >= 0.99
    assert np.median(inputs) <= 200 and np.median(targets) <= 40
