"""Tests for the FLAN 2021 collection (tasks/flan): specs, clusters, tasks, mixtures, tools.

TFDS data cannot be downloaded here, so examples come from tfds.testing.mock_data
(random examples matching each dataset's features, generated offline).
"""
import json
import os
import re
import subprocess
import sys
from unittest import mock

import numpy as np
import pytest
import seqio
import tensorflow as tf
import tensorflow_datasets as tfds

import tasks  # noqa: F401  (registers everything)
from flan_jax import templates as templates_lib
from flan_jax import vocabularies
from flan_jax.templates import Template
from tasks import flan
from tasks.flan import clusters, datasets, patterns, registration

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "tools"))
import show_task  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLACEHOLDER = re.compile(r"\{[A-Za-z_]\w*\}")
NUM_MOCK = 10  # one example per template of a 10-template task

# The datasets PATTERNS templates (its keys are FLAN's template-group keys).
TEMPLATED = registration.datasets_of_patterns(patterns.PATTERNS)
# Filters that reject every random mock row, so these are checked on hand-written
# examples below instead: fix_punct keeps only text with punctuation and true_case
# only text with capitals (mock text has neither); hellaswag keeps rows whose label
# indexes an ending (mock labels are random); ARC keeps 4-choice questions (FLAN's
# filter; mock questions have a random number of choices). WSC273's random pronoun
# offsets fall outside its random text (test_flan_fidelity maps a real example).
MOCK_RENDERED = sorted(set(TEMPLATED) - {"fix_punct", "true_case", "hellaswag",
                                         "arc_challenge", "arc_easy", "wsc273"})
# ReCoRD's answer is one of the passage's entities in real data, not in random mock data.
ANSWER_NOT_AN_OPTION_IN_MOCK = {"record"}


@pytest.fixture
def mock_tfds():
    with tfds.testing.mock_data(num_examples=NUM_MOCK):
        yield


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _rendered(task_name: str, split: str = "validation") -> list[dict]:
    task = seqio.get_mixture_or_task(task_name)
    return list(show_task.rendered_examples(task, split).as_numpy_iterator())


# --- Specs and clusters ------------------------------------------------------------


def test_clusters_cover_the_collection():
    assert len(clusters.CLUSTERS) == 17 and len(clusters.PAPER_CLUSTERS) == 12
    members = [d for ms in clusters.CLUSTERS.values() for d in ms]
    assert len(members) == len(set(members)) == 69
    # WSC273 (a test split only) is in none of FLAN's clusters.
    assert set(members) == set(datasets.DATASETS) - {"wsc273"}
    # The paper's 62: its 12 clusters, counting ANLI/MNLI/ARC/SQuAD once each.
    paper = {d for ms in clusters.PAPER_CLUSTERS.values() for d in ms}
    collapsed = sum(len(group) - 1 for group in clusters.PAPER_COUNTS_AS_ONE)
    assert len(paper) - collapsed == 62
    assert paper <= set(datasets.DATASETS)
    # Every cluster has a templated dataset, so every held-out split is registered.
    for cluster, ms in clusters.CLUSTERS.items():
        assert set(ms) & set(TEMPLATED), cluster


def test_held_out_exclusions():
    def split(cluster):
        train, test = clusters.inter_cluster_split(cluster)
        return set(train), set(test)

    train, test = split("reading_comprehension")
    assert "squad_v1" in test and not train & set(clusters.CLUSTERS["read_comp_and_common_sense"])
    assert "copa" in train
    train, _ = split("common_sense")
    assert "cosmos_qa" not in train and "record" not in train and "squad_v1" in train
    train, _ = split("read_comp_and_common_sense")
    assert not train & set(clusters.CLUSTERS["reading_comprehension"] +
                           clusters.CLUSTERS["common_sense"])
    train, _ = split("paraphrase")
    assert not train & set(clusters.CLUSTERS["entailment"])
    train, _ = split("entailment")
    assert not train & set(clusters.CLUSTERS["paraphrase"]) and "xsum" in train
    train, test = split("sentiment")
    assert not train & test and "rte" in train and "glue_mrpc" in train


def test_specs_are_consistent():
    for name, spec in datasets.DATASETS.items():
        assert re.fullmatch(r"[\w/.-]+:\d+\.\d+\.\d+", spec.tfds_name), name
        expected = {"test"} if name == "wsc273" else {"train", "validation", "test"}
        assert set(spec.splits) == expected, name
        if spec.is_classification:
            assert "answer" in spec.fields, name


def test_every_template_list_is_ten_distinct_and_valid():
    for key, pairs in patterns.PATTERNS.items():
        assert len(pairs) == 10 and len(set(pairs)) == 10, key
    for name, key in TEMPLATED.items():  # each dataset provides every field of its list
        templates_lib.validate_templates(
            name, [Template(*p) for p in patterns.PATTERNS[key]],
            datasets.DATASETS[name].available_fields)
    assert patterns.pattern_name("anli_r2") == "anli" and patterns.pattern_name("rte") == "rte"


def test_task_names_follow_flan():
    names = set(seqio.TaskRegistry.names())
    for d in TEMPLATED:
        for n in (1, 2, 4, 7, 10):
            assert f"{d}_{n}templates" in names
        for i in range(10):
            assert f"{d}_type_{i}" in names
        assert f"{d}_no_template" in names and f"{d}_dataset_name" in names
    assert "rte_type_0_scoring_eval" in names
    assert "rte_type_9_scoring_eval" in names  # FLAN scores every template, turned around too
    assert "xsum_type_0_scoring_eval" not in names  # generation
    assert set(TEMPLATED) == set(datasets.DATASETS)  # every dataset is templated


def test_registration_touches_no_tfds():
    with mock.patch.object(tfds, "builder", side_effect=AssertionError("TFDS touched")), \
         mock.patch.object(tfds, "load", side_effect=AssertionError("TFDS touched")):
        flan.register()


def test_bad_placeholder_fails_at_registration():
    with pytest.raises(ValueError, match=r"rte_typo.*\['premis'\]"):
        registration.register_flan_dataset(
            "rte_typo", [Template("{premis}\n{options_}", "{answer}")],
            datasets.DATASETS["rte"])


# --- Examples through seqio (mock TFDS) ------------------------------------------------


@pytest.mark.parametrize("dataset", MOCK_RENDERED)
def test_templated_tasks_render(mock_tfds, dataset):
    spec = datasets.DATASETS[dataset]
    task = seqio.get_mixture_or_task(f"{dataset}_10templates")
    examples = _rendered(task.name)
    test_example = next(show_task.rendered_examples(task, "test").take(1).as_numpy_iterator(),
                        None)
    assert examples and test_example is not None, f"{dataset}: no examples"
    for ex in examples + [test_example]:
        inputs, targets = _text(ex["inputs"]), _text(ex["targets"])
        assert inputs.strip() and not PLACEHOLDER.search(inputs), inputs
        assert not PLACEHOLDER.search(targets), targets
        template = registration.REGISTERED[dataset].templates[ex["template_idx"]]
        if spec.is_classification:
            options = [_text(o) for o in ex["options"]]
            assert len(options) >= 2
            if template.target == "{answer}" and dataset not in ANSWER_NOT_AN_OPTION_IN_MOCK:
                assert targets in options
            # Some of FLAN's templates ask for the answer without offering the options;
            # ReCoRD's come as the prepared string {options_str}.
            offered = template.uses_options or "options_str" in template.fields
            assert ("OPTIONS:\n- " in inputs) == offered
    seen = {ex["template_idx"] for ex in examples}
    # Filters (spec.keep) drop random mock rows, e.g. story_cloze labels out of range.
    assert len(seen) == NUM_MOCK or spec.keep is not None, (
        f"{dataset}: round robin covered only templates {sorted(seen)}")


def test_train_subset_is_flans_fixed_slice():
    # FLAN reads the first 30,000 training examples, a fixed slice: TFDS is asked for
    # exactly that split string, so every epoch and host sees the same examples.
    source = seqio.get_mixture_or_task("squad_v1_10templates").source
    asked = []

    def as_dataset(split, **kwargs):  # what seqio's read-only loader calls
        asked.append(split)
        return tf.data.Dataset.range(3)

    builder = mock.Mock(as_dataset=mock.Mock(side_effect=as_dataset))
    with mock.patch.object(seqio.utils.LazyTfdsLoader, "builder", new_callable=mock.PropertyMock,
                           return_value=builder):
        assert source.get_dataset("train", shuffle=False).cardinality() == 3  # no take()
        source.get_dataset("validation", shuffle=False)
    assert asked == ["train[:30000]", "train[-200:]"]
    with mock.patch.object(seqio.TfdsDataSource, "num_input_examples", return_value=400_000):
        assert source.num_input_examples("train") == 400_000  # no second cap on top


def test_missing_tfds_data_says_how_to_prepare(tmp_path):
    # A fresh source (seqio memoizes builders per data_dir); read_only: no download starts.
    source = registration.source_for(datasets.DATASETS["rte"])
    source.tfds_dataset.override_data_dir(str(tmp_path))
    with pytest.raises(RuntimeError, match=r"(?s)super_glue/rte:1.0.2.*tools/prepare_data.py"):
        source.get_dataset("validation")
    assert not list(tmp_path.iterdir())  # nothing was downloaded or generated


def test_scoring_eval_has_one_row_per_option(mock_tfds):
    plain = _rendered("mnli_matched_type_0")
    rows = _rendered("mnli_matched_type_0_scoring_eval")
    assert len(rows) == 3 * len(plain)
    for i, ex in enumerate(plain):
        mine = [r for r in rows if r["idx"][0] == i]
        assert [_text(r["targets"]) for r in mine] == [_text(o) for o in ex["options"]]
        assert sum(bool(r["is_correct"]) for r in mine) == 1
        assert all(_text(r["inputs"]) == _text(ex["inputs"]) for r in mine)


def test_tokenized_task_with_local_vocabulary(mock_tfds, tmp_path):
    import sentencepiece as spm
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(["Premise hypothesis yes no OPTIONS question answer."] * 50 +
                                [f"word{i} text {i}" for i in range(200)]))
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(tmp_path / "sp"),
                                   vocab_size=100, model_type="unigram",
                                   pad_id=0, eos_id=1, unk_id=2, bos_id=-1)  # T5's ids
    vocabularies.set_vocabulary_path(str(tmp_path / "sp.model"))
    try:
        ds = seqio.get_mixture_or_task("rte_10templates").get_dataset(
            {"inputs": 128, "targets": 16}, split="validation", shuffle=False)
        ex = next(ds.as_numpy_iterator())
        assert ex["inputs"].dtype == np.int32 and ex["inputs"][-1] == 1  # EOS
    finally:
        vocabularies.set_vocabulary_path(None)


def test_hellaswag_mapping_on_handwritten_examples():
    spec = datasets.DATASETS["hellaswag"]
    raw = tf.data.Dataset.from_tensor_slices({
        "context": ["[header] How to bake. [step] Mix flour.", "x"],
        "endings": [["[step] Bake it.", "Eat it.", "Sing.", "Sleep."], ["a", "b", "c", "d"]],
        "activity_label": ["Baking", "Other"], "label": [0, 7]})
    out = list(registration.to_fields(raw, spec).as_numpy_iterator())
    assert len(out) == 1  # label 7 indexes no ending
    assert _text(out[0]["context"]) == "How to bake. \nMix flour."  # [step] -> newline
    assert _text(out[0]["answer"]) == "Bake it." and _text(out[0]["activity_label"]) == "Baking"
    inputs, targets = Template(*patterns.PATTERNS["hellaswag"][1]).render(
        {k: (v if k == "options" else _text(v)) for k, v in out[0].items()})
    assert "How to bake. \nMix flour." in inputs and "\n- Bake it.\n- Eat it." in inputs
    assert targets == "Bake it."


@pytest.mark.parametrize("dataset, field, expected", [
    ("fix_punct", "no_punct", "Hello world"), ("true_case", "lower", "hello, world!"),
    ("word_segment", "no_space", "Hello,world!")])
def test_text_formatting_on_handwritten_examples(dataset, field, expected):
    spec = datasets.DATASETS[dataset]
    raw = tf.data.Dataset.from_tensor_slices({"en": ["Hello, world!", "no punctuation"]})
    out = list(registration.to_fields(raw, spec).as_numpy_iterator())
    if dataset != "word_segment":  # the others drop text they would leave unchanged
        assert len(out) == 1
    assert (_text(out[0][field]), _text(out[0]["answer"])) == (expected, "Hello, world!")


# --- Mixtures ----------------------------------------------------------------------------


def _mixture_tasks(name):
    return {t.name for t in seqio.get_mixture_or_task(name).tasks}


def test_inter_cluster_mixtures(mock_tfds):
    names = list(clusters.CLUSTERS)
    for idx, cluster in enumerate(names):
        train, test = clusters.inter_cluster_split(cluster)
        for n in (1, 10):
            stem = f"flan_inter_cluster_split_{idx}_{n}templates"
            expect_train = {f"{d}_{n}templates" for d in train if d in TEMPLATED}
            expect_test = {f"{d}_{n}templates" for d in test if d in TEMPLATED}
            assert _mixture_tasks(stem + "_train") == expect_train, stem
            assert _mixture_tasks(stem + "_eval") == expect_test, stem
    rc = names.index("reading_comprehension")
    train = _mixture_tasks(f"flan_inter_cluster_split_{rc}_10templates_train")
    assert "cosmos_qa_10templates" not in train and "squad_v1_10templates" not in train
    assert "copa_10templates" in train
    ent = names.index("entailment")
    train = _mixture_tasks(f"flan_inter_cluster_split_{ent}_10templates_train")
    assert "glue_mrpc_10templates" not in train and "rte_10templates" not in train
    assert _mixture_tasks(f"flan_inter_cluster_split_{ent}_no_template_train") == {
        t.replace("10templates", "no_template") for t in train}


def test_train_mixtures_cap_rates_eval_mixtures_do_not(mock_tfds):
    train = seqio.get_mixture_or_task("flan_inter_cluster_split_0_10templates_train")
    evaluation = seqio.get_mixture_or_task("flan_inter_cluster_split_0_10templates_eval")
    with mock.patch.object(seqio.Task, "num_input_examples", return_value=25_000):
        assert {train.get_rate(t) for t in train.tasks} == {3000}
        assert {evaluation.get_rate(t) for t in evaluation.tasks} == {25_000}


def test_ablation_mixtures_exist():
    mixtures = set(seqio.MixtureRegistry.names())
    for name in ("flan_all_overlap_10templates_train", "flan_superglue_split_4templates_eval",
                 "flan_diversity_split3_10templates_train",
                 "flan_superglue_split_10templates_5train_tasks_train",
                 "flan_inter_cluster_split_3_dataset_name_train"):
        assert name in mixtures, name
    superglue_eval = _mixture_tasks("flan_superglue_split_10templates_eval")
    assert superglue_eval == {f"{d}_10templates" for d in clusters.SUPERGLUE
                              if d in TEMPLATED}


def test_dataset_name_ablation_renders(mock_tfds):
    ex = _rendered("rte_dataset_name")[0]
    assert _text(ex["inputs"]).startswith("[Entailment: rte] ")


# --- Own data and external patterns ------------------------------------------------------


def test_external_patterns_register(mock_tfds):
    external = {"my_rte": [("{premise} => {hypothesis}?\n{options_}", "{answer}"),
                           ("Say {answer} about: {premise}", "{hypothesis}")]}
    names = registration.register_from_patterns(external, {"my_rte": datasets.DATASETS["rte"]})
    try:
        assert {"my_rte_1templates", "my_rte_2templates", "my_rte_type_0_scoring_eval"} <= set(
            names)
        ex = _rendered("my_rte_2templates")[0]
        assert " => " in _text(ex["inputs"]) and _text(ex["targets"]) in ("yes", "no")
    finally:
        for name in names:
            seqio.TaskRegistry.remove(name)


def test_patterns_key_of_no_dataset_is_refused_naming_the_group_key():
    with pytest.raises(ValueError, match=r"(?s)\['mnli_matched'\].*'mnli_matched' is templated "
                                         r"by the group key 'mnli'.*known: \[.*'anli'"):
        registration.register_from_patterns({"mnli_matched": patterns.PATTERNS["mnli"]})
    with pytest.raises(ValueError, match=r"\['rtee'\] template no dataset"):
        registration.datasets_of_patterns({"rtee": patterns.PATTERNS["rte"]})
    assert registration.datasets_of_patterns({"anli": []}) == {
        "anli_r1": "anli", "anli_r2": "anli", "anli_r3": "anli"}


def test_jsonl_task_end_to_end(tmp_path):
    rows = [{"question": f"Is {i} even?", "answer": "yes" if i % 2 == 0 else "no"}
            for i in range(6)]
    for split in ("train", "validation"):
        (tmp_path / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    names = registration.register_jsonl_task(
        "my_parity", str(tmp_path / "train.jsonl"), str(tmp_path / "validation.jsonl"),
        [("{question}\n{options_}", "{answer}"), ("Q: {question}", "{answer}"),
         ("Ask a question answered by {answer}.", "{question}")],
        options=("no", "yes"))
    try:
        assert "my_parity_2templates" in names and "my_parity_type_0_scoring_eval" in names
        out = _rendered("my_parity_2templates", "train")
        assert [_text(e["inputs"]) for e in out[:2]] == [
            "Is 0 even?\nOPTIONS:\n- no\n- yes", "Q: Is 1 even?"]
        assert [_text(e["targets"]) for e in out] == [r["answer"] for r in rows]
        assert len(_rendered("my_parity_type_0_scoring_eval")) == 12
        with pytest.raises(ValueError, match=r"my_bad.*\['topic'\]"):
            registration.register_jsonl_task(
                "my_bad", str(tmp_path / "train.jsonl"), None, [("{topic}", "{answer}")])
    finally:
        for name in names:
            seqio.TaskRegistry.remove(name)


# --- Tools ---------------------------------------------------------------------------------


def test_show_task_on_mini_mixture():
    out = subprocess.run(
        [sys.executable, os.path.join(REPO, "tools", "show_task.py"),
         "mini_flan_heldout_entailment_train", "-n", "3"],
        capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "mini_addition_10templates  rate=2000" in out.stdout
    assert out.stdout.count("--- inputs:") == 3 and "--- targets:" in out.stdout


def test_show_task_unknown_name_suggests():
    with pytest.raises(ValueError, match="Closest registered names.*rte_10templates"):
        show_task.show("rte_10template", 1, "validation")


def test_prepare_data_lists_every_dataset():
    names = set(__import__("prepare_data").tfds_names())
    assert {"super_glue/rte:1.0.2", "glue/mnli:2.0.0", "para_crawl/enda:1.2.0"} <= names
    assert len(names) == len({s.tfds_name for s in datasets.DATASETS.values()})


# Few-shot tasks: tests/test_flan_few_shot.py.
