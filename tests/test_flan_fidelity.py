"""The FLAN 2021 collection against facts of FLAN's own code.

Reference facts come from tests/data/flan/flan_2021_reference.json.gz, which
tools/flan_reference.py writes by importing FLAN's flan/ package (commit 3770e83, and
its later commit for TFDS pins). Expected metric values below are computed by hand from
the definitions in t5.evaluation (EM / F1 over gold answers, ROUGE, F1 over labels).
"""
import difflib
import os
import re
import sys
from unittest import mock

import pytest
import seqio
import tensorflow as tf
import tensorflow_datasets as tfds
from t5.evaluation import metrics as t5_metrics

import tasks  # noqa: F401  (registers everything)
from flan_jax.templates import Template
from tasks import flan
from tasks.flan import clusters as clusters_lib
from tasks.flan import datasets, patterns, registration, reporting
from tasks.flan import metrics as flan_metrics

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "tools"))
import flan_reference  # noqa: E402
import show_task  # noqa: E402

FLAN = flan_reference.load()
FLAN_DATASETS = FLAN["datasets"]

# FLAN's own functions and ours that implement them (tasks/flan/metrics.py).
OURS_FOR_FLANS = {
    "flan.metrics.rouge_fn": flan_reference.describe(flan_metrics.multi_reference_rouge),
    "flan.tasks.flan_post_multirc": flan_reference.describe(flan_metrics.multirc_label_and_group),
}


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _templated(task_name: str, raw: dict) -> list[dict]:
    """One raw TFDS-shaped example through the real task's preprocessors (before tokens)."""
    task = seqio.get_mixture_or_task(task_name)
    with mock.patch.object(type(task.source), "get_dataset",
                           return_value=tf.data.Dataset.from_tensors(raw)):
        return list(show_task.rendered_examples(task, "test").as_numpy_iterator())


def _score(task_name: str, examples: list[dict], predictions: list[str]) -> dict:
    """The task's postprocess_fn and metric_fns applied as seqio's Evaluator applies them."""
    task = seqio.get_mixture_or_task(task_name)
    post = task.postprocess_fn  # seqio's: the task's postprocessor, or the identity
    targets = [post(_text(ex["targets"]), example=ex, is_target=True) for ex in examples]
    preds = [post(p, example=ex, is_target=False) for p, ex in zip(predictions, examples)]
    scores = {}
    for metric_fn in task.metric_fns:
        scores.update(metric_fn(targets, preds))
    return scores


# --- Facts: every dataset's splits, versions, metrics ---------------------------------


def test_reference_is_flans_2021_release():
    assert FLAN["commit"].startswith("3770e83")
    assert len(FLAN["task_names"]) == 10984 and len(FLAN["mixtures"]) == 1876
    assert set(FLAN_DATASETS) == set(datasets.DATASETS)


@pytest.mark.parametrize("name", sorted(datasets.DATASETS))
def test_splits_are_flans(name):
    flans = FLAN_DATASETS[name]["splits"]
    if flans is None:  # FLAN reads the TFDS splits as they are: WSC273 has a test split only
        assert name == "wsc273"
        flans = {"test": "test"}
    assert dict(datasets.DATASETS[name].splits) == flans


@pytest.mark.parametrize("name", sorted(datasets.DATASETS))
def test_tfds_version_is_flans_or_a_listed_choice(name):
    ours = datasets.DATASETS[name].tfds_name
    flan_2021, later = FLAN_DATASETS[name]["tfds_name"], FLAN_DATASETS[name]["later_tfds_name"]
    if name in datasets.VERSION_CHOICES:
        assert datasets.VERSION_CHOICES[name][0] == flan_2021 != ours
        if later != flan_2021 and ":" in later and not later.startswith("huggingface:"):
            assert ours == later, "FLAN's later pin wins where FLAN has one"
        assert ours.split(":")[0] == flan_2021.split(":")[0]  # same dataset and config
    else:
        assert ours == flan_2021


@pytest.mark.parametrize("name", sorted(datasets.DATASETS))
def test_tfds_version_builds_with_this_tfds(name):
    base, version = datasets.DATASETS[name].tfds_name.split(":")
    builder = tfds.builder_cls(base.split("/")[0])
    versions = {str(builder.VERSION), *map(str, builder.SUPPORTED_VERSIONS)}
    config = {c.name: c for c in builder.BUILDER_CONFIGS or []}.get(
        base.split("/")[1] if "/" in base else None)
    if config is not None and config.version is not None:
        versions = {str(config.version), *map(str, config.supported_versions or [])}
    assert version in versions, f"{name}: TFDS builds {sorted(versions)}"


def _buildable(tfds_name: str) -> set[str]:
    base = tfds_name.split(":")[0]
    builder = tfds.builder_cls(base.split("/")[0])
    config = {c.name: c for c in builder.BUILDER_CONFIGS or []}.get(
        base.split("/")[1] if "/" in base else None)
    if config is not None and config.version is not None:
        return {str(config.version), *map(str, config.supported_versions or [])}
    return {str(builder.VERSION), *map(str, builder.SUPPORTED_VERSIONS)}


def test_version_choices_say_why():
    for name, (flan_2021, why) in datasets.VERSION_CHOICES.items():
        if "builds only" in why:  # FLAN's versions are gone from this TFDS
            assert flan_2021.split(":")[1] not in _buildable(flan_2021), name
            later = FLAN_DATASETS[name]["later_tfds_name"]
            if ":" in later and later != datasets.DATASETS[name].tfds_name:
                assert later.split(":")[1] not in _buildable(later), name
    # FLAN's later xsum is Hugging Face's copy; we keep FLAN 2021's, which TFDS still builds.
    assert FLAN_DATASETS["xsum"]["later_tfds_name"] == "huggingface:xsum"
    assert datasets.DATASETS["xsum"].tfds_name == FLAN_DATASETS["xsum"]["tfds_name"]
    assert "1.0.0" in _buildable("xsum:1.0.0")


@pytest.mark.parametrize("name", sorted(datasets.DATASETS))
def test_metrics_and_postprocessors_are_flans(name):
    spec = datasets.DATASETS[name]
    flan_facts = FLAN_DATASETS[name]
    ours = [flan_reference.describe(f) for f in spec.metric_fns]
    theirs = [OURS_FOR_FLANS.get(f, f) for f in flan_facts["metric_fns"]]
    if name == "record":
        # FLAN's deduplicate_metric(squad) cannot read t5_post.qa's answer lists (it indexes
        # a list by "group" and raises); one example per query makes it plain squad.
        assert theirs == [flan_reference.describe(t5_metrics.deduplicate_metric(
            t5_metrics.squad))]
        theirs = [flan_reference.describe(t5_metrics.squad)]
        with pytest.raises(TypeError):
            t5_metrics.deduplicate_metric(t5_metrics.squad)([["a"]], ["a"])
    assert ours == theirs
    post = flan_facts["postprocess_fn"]
    assert flan_reference.describe(spec.postprocess_fn) == OURS_FOR_FLANS.get(post, post)


def test_templated_tasks_keep_the_postprocessor_flan_leaves_off():
    # FLAN registers {d}_10templates with metric_fns but no postprocess_fn (README: a
    # deliberate difference); ours score like {d}_type_{i}.
    assert {facts["templated_postprocess_fn"] for facts in FLAN_DATASETS.values()} == {None}
    assert seqio.get_mixture_or_task("squad_v1_10templates").postprocessor is not None


def test_registered_tasks_carry_the_specs_scoring():
    for name in ("squad_v1", "multirc", "common_gen", "cb"):
        spec = datasets.DATASETS[name]
        task = seqio.get_mixture_or_task(f"{name}_10templates")
        assert task.postprocessor is spec.postprocess_fn
        assert list(task.metric_fns) == list(spec.metric_fns)


# --- Metrics on examples through the real tasks ---------------------------------------------


def test_squad_scores_a_non_first_gold_answer():
    raw = {"title": "Paris_city", "context": "Paris is the capital of France.",
           "question": "What is the capital?",
           "answers": {"text": ["the city of Paris", "Paris"], "answer_start": [0, 0]}}
    [ex] = _templated("squad_v1_type_0", raw)
    assert [_text(a) for a in ex["answers"]] == ["the city of Paris", "Paris"]
    assert _score("squad_v1_type_0", [ex], ["Paris"]) == {"em": 100.0, "f1": 100.0}
    assert _score("squad_v1_type_0", [ex], ["Rome"]) == {"em": 0.0, "f1": 0.0}


def test_squad_v2_unanswerable_is_the_only_answer():
    raw = {"title": "t", "context": "c", "question": "q", "is_impossible": True,
           "answers": {"text": tf.constant([], tf.string),
                       "answer_start": tf.constant([], tf.int32)}}
    [ex] = _templated("squad_v2_type_0", raw)
    assert [_text(a) for a in ex["answers"]] == ["unanswerable"]
    assert _score("squad_v2_type_0", [ex], ["unanswerable"])["em"] == 100.0


def test_trivia_qa_scores_every_normalized_alias():
    raw = {"question": "Who wrote Hamlet?",
           "answer": {"normalized_value": "william shakespeare",
                      "normalized_aliases": ["william shakespeare", "shakespeare", "bard"],
                      "value": "William Shakespeare"}}
    [ex] = _templated("trivia_qa_type_0", raw)
    assert _score("trivia_qa_type_0", [ex], ["Shakespeare"])["em"] == 100.0
    assert _score("trivia_qa_type_0", [ex], ["The Bard"])["em"] == 100.0  # articles dropped


def test_natural_questions_scores_every_answer():
    [ex] = _templated("natural_questions_type_0",
                      {"question": "largest ocean", "answer": ["the Pacific", "Pacific Ocean"]})
    assert _text(ex["inputs"]).count("largest ocean?") == 1  # FLAN appends "?"
    assert _score("natural_questions_type_0", [ex], ["Pacific Ocean"])["em"] == 100.0


def test_record_scores_every_answer_with_the_query_tail():
    raw = {"passage": "Obama met Merkel.\n@highlight\nA meeting", "query": "@placeholder met her.",
           "entities": ["Obama", "Merkel", "Barack Obama"],
           "answers": ["Barack Obama", "Obama"]}
    [ex] = _templated("record_type_0", raw)
    assert [_text(a) for a in ex["answers"]] == ["Barack Obama met her.", "Obama met her."]
    assert _score("record_type_0", [ex], ["Obama met her."])["em"] == 100.0


def test_structure_to_text_is_multi_reference_rouge():
    raw = {"concepts": ["dog", "ball"], "target": "A dog chases a ball.",
           "references": ["The ball was caught by the dog."]}
    [ex] = _templated("common_gen_type_0", raw)
    assert [_text(a) for a in ex["answers"]] == ["The ball was caught by the dog.",
                                                 "A dog chases a ball."]
    scores = _score("common_gen_type_0", [ex], ["The ball was caught by the dog."])
    assert set(scores) == {"rouge1", "rouge2", "rougeLsum"}
    assert all(v == pytest.approx(100.0) for v in scores.values())
    single = t5_metrics.rouge(["A dog chases a ball."], ["The ball was caught by the dog."])
    assert single["rouge1"] < 60


def test_multi_reference_rouge_picks_the_best_reference_per_type():
    targets = [["a b c d", "x y"], ["p q r s", "p q"]]
    predictions = ["a b c d", "p q"]
    assert flan_metrics.multi_reference_rouge(targets, predictions)["rouge1"] == pytest.approx(100)
    with pytest.raises(ValueError, match="no reference"):
        flan_metrics.multi_reference_rouge([[]], ["x"])


def test_multirc_is_f1_over_answers_and_exact_match_per_question():
    def row(question_id, label):
        return {"paragraph": "p", "question": f"q{question_id}", "answer": "a", "label": label,
                "idx": {"paragraph": 0, "question": question_id, "answer": 0}}

    examples = [ex for raw in (row(0, 1), row(0, 0), row(1, 1)) for ex in
                _templated("multirc_type_0", raw)]
    assert [int(ex["idx/question"]) for ex in examples] == [0, 0, 1]
    scores = _score("multirc_type_0", examples, ["yes", "yes", "yes"])
    # Labels [1, 0, 1], predictions [1, 1, 1]: F1 = 2*2 / (2*2 + 1) = 0.8; question 0 has a
    # wrong answer, question 1 is all right: exact match 50.
    assert scores == {"f1": pytest.approx(80.0), "exact_match": pytest.approx(50.0)}


# --- FLAN quirks: reproduced by default, fixed on request ----------------------------------


def test_cb_f1_is_flans_zero_unless_fixed():
    targets = ["Yes", "No", "It's impossible to say"]
    spec = datasets.DATASETS["cb"]
    assert spec.metric_fns[0](targets, targets) == {"mean_3class_f1": 0.0}  # FLAN's number
    fixed = datasets.specs(fix_flan_quirks=True)["cb"]
    ids = [fixed.postprocess_fn(t, is_target=True) for t in targets]
    assert fixed.metric_fns[0](ids, ids) == {"mean_3class_f1": pytest.approx(100.0)}


def test_quac_scores_characters_as_flan_unless_fixed():
    target, prediction = "in 1990", "n"  # one character of the answer
    spec = datasets.DATASETS["quac"]
    assert spec.postprocess_fn is None
    assert spec.metric_fns[0]([target], [prediction])["em"] == 100.0  # FLAN's quirk
    fixed = datasets.specs(fix_flan_quirks=True)["quac"]
    targets = [fixed.postprocess_fn(target, is_target=True)]
    assert fixed.metric_fns[0](targets, [prediction])["em"] == 0.0
    assert fixed.metric_fns[0](targets, ["in 1990"])["em"] == 100.0


def test_coqa_scores_characters_as_flan_unless_fixed():
    target = "1. yes\n2. in the park"
    spec, fixed = datasets.DATASETS["coqa"], datasets.specs(fix_flan_quirks=True)["coqa"]
    assert spec.postprocess_fn is None and spec.metric_fns[0]([target], ["y"])["em"] == 100.0
    targets = [fixed.postprocess_fn(target, is_target=True)]
    assert fixed.metric_fns[0](targets, ["y"])["em"] == 0.0


def test_dialog_prompt_is_flans_and_off_by_default():
    assert FLAN["formatters_end_with_dialog_prompt"]  # FLAN wraps every templated input
    [wrapped] = registration.with_dialog_prompt([Template("{x}", "{y}")])
    assert wrapped.render({"x": "INPUT", "y": "target"}) == (
        FLAN["dialog_wrapped"]["inputs"], FLAN["dialog_wrapped"]["targets"])
    raw = {"premise": "It rained.", "hypothesis": "Wet.", "label": 0, "idx": 0}
    [plain] = _templated("rte_type_0", raw)
    assert not _text(plain["inputs"]).endswith(registration.DIALOG_SUFFIX)  # off for T5
    templates = [Template(*p) for p in patterns.PATTERNS["rte"]]
    names = registration.register_flan_dataset("my_rte_dialog", templates,
                                               datasets.DATASETS["rte"], dialog_prompt=True)
    try:
        [ex] = _templated("my_rte_dialog_type_0", raw)
        assert _text(ex["inputs"]) == f"0 {_text(plain['inputs'])} X 1 FLAN"
        assert _text(ex["targets"]) == _text(plain["targets"])
        rows = _templated("my_rte_dialog_type_0_scoring_eval", raw)
        assert all(_text(r["inputs"]).endswith(" X 1 FLAN") for r in rows)
    finally:
        for name in names:
            seqio.TaskRegistry.remove(name)
        registration.REGISTERED.pop("my_rte_dialog")


def test_dialog_prompt_switch_at_import():
    raw = {"premise": "It rained.", "hypothesis": "Wet.", "label": 0, "idx": 0}
    try:
        with mock.patch.dict(os.environ, {flan.DIALOG_PROMPT_ENV: "1"}):
            flan.register()
        [ex] = _templated("rte_type_0", raw)
        assert _text(ex["inputs"]).startswith("0 ") and _text(ex["inputs"]).endswith(" X 1 FLAN")
    finally:
        flan.register(fix_flan_quirks=False, dialog_prompt=False)
    [ex] = _templated("rte_type_0", raw)
    assert not _text(ex["inputs"]).endswith(" X 1 FLAN")


def test_fix_flan_quirks_switch_registers_fixed_tasks():
    assert seqio.get_mixture_or_task("cb_type_0").postprocessor is None
    try:
        with mock.patch.dict(os.environ, {flan.FIX_QUIRKS_ENV: "1"}):
            flan.register()
        fixed = seqio.get_mixture_or_task("cb_type_0").postprocessor
        assert fixed is datasets.FLAN_QUIRKS["cb"].fix["postprocess_fn"]
        assert fixed("No", is_target=True) == 1
    finally:
        flan.register(fix_flan_quirks=False)
    assert seqio.get_mixture_or_task("cb_type_0").postprocessor is None


# --- Data: filters and field mappings as FLAN's ----------------------------------------------


def _fields(name: str, rows: list[dict]) -> list[dict]:
    spec = datasets.DATASETS[name]
    ds = tf.data.Dataset.from_tensors(rows[0])
    for row in rows[1:]:
        ds = ds.concatenate(tf.data.Dataset.from_tensors(row))
    return list(registration.to_fields(ds, spec).as_numpy_iterator())


def test_sentiment140_keeps_neutral_tweets_as_negative():
    out = _fields("sentiment140", [{"text": t, "polarity": p}
                                   for t, p in (("bad", 0), ("meh", 2), ("good", 4))])
    assert [_text(o["answer"]) for o in out] == ["negative", "negative", "positive"]


def test_arc_keeps_only_four_choice_questions():
    rows = [{"question": f"q{n}", "choices": {"text": [f"c{i}" for i in range(n)],
                                              "label": [str(i) for i in range(n)]},
             "answerKey": 1} for n in (3, 4, 5)]
    for name in ("arc_challenge", "arc_easy"):
        out = _fields(name, [rows[0]]) + _fields(name, [rows[1]]) + _fields(name, [rows[2]])
        assert [_text(o["question"]) for o in out] == ["q4"]
        assert _text(out[0]["answer"]) == "c1"


def test_dart_joins_every_cell_with_semicolons():
    [out] = _fields("dart", [{"tripleset": [["Mars", "orbits", "Sun"], ["[TITLE]", "is", "x"]],
                              "target": "t", "references": ["r"]}])
    # FLAN: reduce_join of all cells with "; ", then "[...]" markers removed; the
    # one-cell-per-line form keeps them.
    assert _text(out["tripleset"]) == "Mars; orbits; Sun; ; is; x"
    assert _text(out["tripleset_newline"]) == "Mars\norbits\nSun\n[TITLE]\nis\nx"


def test_wsc273_splits_at_the_pronoun_as_flan():
    [out] = _fields("wsc273", [{
        "text": "The trophy does not fit in the suitcase because it is too big.",
        "option1": "The trophy", "option1_normalized": "the trophy",
        "option2": "the suitcase", "option2_normalized": "the suitcase",
        "pronoun_start": 48, "pronoun_end": 50, "pronoun_text": "it", "label": 0, "idx": 0}])
    assert _text(out["context"]) == "The trophy does not fit in the suitcase because"
    assert [_text(o) for o in out["options"]] == ["the trophy is too big.",
                                                  "the suitcase is too big."]
    assert _text(out["answer"]) == "the trophy is too big."


def test_samsum_removes_tags_greedily_as_flan():
    [out] = _fields("samsum", [{"dialogue": "Ann: <file_photo> look <file_gif>\r\nBob: ok",
                                "summary": "s", "id": "1"}])
    assert _text(out["dialogue"]) == "Ann:  \nBob: ok"


def test_winogrande_splits_at_the_blank_as_flan():
    [out] = _fields("winogrande", [{"sentence": "Ann gave Bob _ book because _ was kind.",
                                    "option1": "Ann", "option2": "Bob", "label": 1}])
    assert _text(out["context"]) == "Ann gave Bob "  # unstripped, as FLAN's
    assert [_text(o) for o in out["options"]] == ["Ann book because ", "Bob book because "]
    assert _text(out["answer"]) == "Bob book because "


def test_story_cloze_label_counts_from_one():
    [out] = _fields("story_cloze", [{"context": "c", "endings": ["first", "second"],
                                     "label": 2}])
    assert _text(out["answer"]) == "second"  # FLAN: options[label - 1]


def test_gigaword_filter_as_flan():
    rows = [{"document": d, "summary": s} for d, s in
            (("a UNK b", "s"), ("tag #x", "s"), ("ends UN", "K starts"), ("clean", "s"),
             ("line\nUNK", "s"))]
    kept = [_text(o["text"]) for row in rows for o in _fields("gigaword", [row])]
    assert kept == ["clean", "line\nUNK"]  # RE2's "." does not cross the newline


def test_qqp_replaces_doubled_quotes():
    [out] = _fields("glue_qqp", [{"question1": 'What is ""AI""?', "question2": "x",
                                  "label": 1, "idx": 0}])
    assert _text(out["question1"]) == "What is 'AI'?" and _text(out["answer"]) == "yes"


def test_eval_fields_stay_out_of_few_shot_exemplars():
    task = seqio.get_mixture_or_task("squad_v1_type_0_two_shot")
    train_steps = task.source._train_preprocessors  # exemplars: no answer lists to batch
    templating = [s for s in train_steps if getattr(s, "func", None) is
                  registration.preprocessors.apply_templates]
    assert templating and templating[0].keywords["passthrough"] == ()
    assert datasets.DATASETS["squad_v1"].eval_fields == ("answers",)


# --- Task names: all of FLAN's, plus the paper's ablations (README "Fidelity to FLAN") ----

# The paper's ablations, and rank classification with the templates round robin (README
# "mini-FLAN": one pass over the examples for the per-template table).
OUR_EXTRA_TASKS = re.compile(r"\w+_(no_template|dataset_name|\d+templates_scoring_eval)")


def test_every_flan_task_name_is_registered():
    registered = set(seqio.TaskRegistry.names())
    flan_names = set(FLAN["task_names"])
    missing = sorted(flan_names - registered)
    assert not missing, (len(missing), missing[:5])
    ours = tuple(f"{d}_" for d in datasets.DATASETS)  # not mini-FLAN's or the tests' own
    extra = {n for n in registered - flan_names if n.startswith(ours)}
    assert extra
    assert all(OUR_EXTRA_TASKS.fullmatch(n) for n in extra), sorted(extra)[:5]


def _score_rows(task_name: str, raw: dict) -> list[tuple[str, bool]]:
    return [(_text(r["targets"]), bool(r["is_correct"])) for r in _templated(task_name, raw)]


def test_scoring_marks_the_gold_answer_for_every_template():
    raw = {"premise": "It rained.", "hypothesis": "The ground is wet.", "label": 0, "idx": 0}
    turned_around = reporting.turned_around("rte")
    assert turned_around  # FLAN scores these templates' inputs against the options too
    for i in (0, turned_around[0]):
        assert _score_rows(f"rte_type_{i}_scoring_eval", raw) == [("yes", True), ("no", False)]
    [row] = _templated("rte_type_0_score_eval_no_options", raw)[:1]
    assert "OPTIONS" not in _text(row["inputs"]) and "The ground is wet." in _text(row["inputs"])
    assert "OPTIONS" in _text(_templated("rte_type_0_scoring_eval", raw)[0]["inputs"])


def test_record_scoring_accepts_every_gold_answer():
    raw = {"passage": "p", "query": "@placeholder won.", "entities": ["Ann", "Bob", "Ann Lee"],
           "answers": ["Ann Lee", "Ann"]}
    assert _score_rows("record_type_0_scoring_eval", raw) == [
        ("Ann won.", True), ("Bob won.", False), ("Ann Lee won.", True)]


def test_classification_without_answer_field_is_refused():
    with pytest.raises(ValueError,
                       match=r"my_cls.*'answer' field.*\['label', 'options', 'text'\]"):
        registration.register_dataset_tasks(
            "my_cls", [registration.Template("{text}\n{options_}", "{label}")],
            source=seqio.FunctionDataSource(lambda split, shuffle_files: None, splits=["train"]),
            available_fields=("text", "label", "options"), is_classification=True)


# --- Field mappings on the same random examples as FLAN's code ------------------------------

MOCKED = sorted(n for n in datasets.DATASETS if FLAN_DATASETS[n]["mock"] is not None)
# FLAN's STS-B "answer" is the float score (its templates read "answer_str"); ours the text.
NOT_COMPARED = {("stsb", "answer")}


@pytest.mark.parametrize("name", MOCKED)
def test_answers_and_options_equal_flans_on_mock_data(name):
    spec = datasets.DATASETS[name]
    with tfds.testing.mock_data(num_examples=flan_reference.MOCK_EXAMPLES):
        source = registration.source_for(spec)
        ds = registration.to_fields(source.get_dataset("test", shuffle=False), spec)
        ours = list(ds.take(flan_reference.MOCK_EXAMPLES).as_numpy_iterator())
    theirs = FLAN_DATASETS[name]["mock"]
    assert len(ours) == len(theirs)
    for mine, flans in zip(ours, theirs):
        for key, value in flans.items():
            if (name, key) in NOT_COMPARED:
                continue
            assert key in mine, key
            got = mine[key]
            got = [_text(v) for v in got] if isinstance(value, list) else _text(got)
            assert got == value, key


def test_most_datasets_are_compared_on_mock_data():
    assert len(MOCKED) >= 60


# --- Templates: FLAN's structure (keys, fields, positions), our own wording -----------------

# FLAN's templates.PATTERNS as tools/flan_reference.py stores it: per template the input and
# target skeletons (FLAN's fields in place, each run of FLAN's words a «hash») and the hashes
# of its words. The structure is FLAN's; none of its prose is stored.
FLAN_PATTERN_FACTS = FLAN["patterns"]
FLAN_PATTERNS = {key: [(t["input"], t["target"]) for t in templates]
                 for key, templates in FLAN_PATTERN_FACTS.items()}
PLACEHOLDER = flan_reference.TEMPLATE_FIELD
OPTIONS_SLOTS = {"options_", "options_str"}


def _slots(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def test_pattern_keys_and_groups_are_flans():
    assert set(patterns.PATTERNS) == set(FLAN_PATTERNS)
    assert {d: patterns.pattern_name(d) for d in FLAN["pattern_names"]} == FLAN["pattern_names"]
    assert registration.datasets_of_patterns(patterns.PATTERNS) == FLAN["pattern_names"]
    classification = {key for key in FLAN_PATTERNS
                      if any(datasets.DATASETS[d].is_classification
                             for d, k in FLAN["pattern_names"].items() if k == key)}
    assert classification == set(FLAN["classification_patterns"])


@pytest.mark.parametrize("key", sorted(FLAN_PATTERNS))
def test_every_template_reads_flans_fields_in_flans_position(key):
    # The same fields in input and target at each position: the options-less and the
    # turned-around templates sit where FLAN's do, asking for what FLAN's ask for.
    ours, flans = patterns.PATTERNS[key], FLAN_PATTERNS[key]
    assert len(ours) == len(flans) and len(set(ours)) == len(ours)
    for i, ((our_in, our_out), (flan_in, flan_out)) in enumerate(zip(ours, flans)):
        assert (_slots(our_in), _slots(our_out)) == (_slots(flan_in), _slots(flan_out)), (
            f"{key} template {i}")


def _flans_turned_around(dataset: str) -> tuple[int, ...]:
    """Positions of FLAN's templates that do not ask for the answer, read off FLAN's strings:
    a target other than template 0's; for translation, a target that is not one sentence of
    the pair with the other sentence in the input."""
    pairs = FLAN_PATTERNS[FLAN["pattern_names"][dataset]]
    if dataset in clusters_lib.CLUSTERS["translation"]:
        other = {"{sent1}": "{sent2}", "{sent2}": "{sent1}"}
        return tuple(i for i, (inp, out) in enumerate(pairs)
                     if out not in other or other[out] not in inp)
    return tuple(i for i, (_, out) in enumerate(pairs) if out != pairs[0][1])


def test_turned_around_templates_are_found_where_flans_are():
    counts = {}
    for dataset in datasets.DATASETS:
        assert reporting.turned_around(dataset) == _flans_turned_around(dataset), dataset
        counts[dataset] = len(reporting.turned_around(dataset))
    assert set(counts.values()) == {0, 1, 2, 3, 4}  # FLAN varies it by dataset
    optionless = {key: [i for i, (inp, _) in enumerate(pairs) if not _slots(inp) & OPTIONS_SLOTS]
                  for key, pairs in patterns.PATTERNS.items()
                  if key in FLAN["classification_patterns"]}
    assert optionless["winogrande"] == [5, 6, 7, 8, 9] and optionless["wsc"] == []


@pytest.mark.parametrize("name", sorted(datasets.DATASETS))
def test_dataset_fields_are_flans_names(name):
    spec = datasets.DATASETS[name]
    key = FLAN["pattern_names"][name]
    used = set().union(*(_slots(i) | _slots(t) for i, t in FLAN_PATTERNS[key]))
    used = {"options" if f == "options_" else f for f in used}
    assert used <= set(spec.available_fields), "FLAN's templates read fields we lack"
    flans = FLAN_DATASETS[name]["mock_fields"]  # what FLAN's preprocessors output
    if flans is not None:
        assert set(spec.available_fields) <= set(flans), "a field under a name of our own"


def _flan_shaped_patterns() -> dict[str, list[tuple[str, str]]]:
    """FLAN's PATTERNS with its wording replaced by placeholder text of ours: the same keys,
    fields and field order in every template."""
    def reword(text: str, label: str) -> str:
        pieces = PLACEHOLDER.split(text)  # literal, field, literal, field, ..., literal
        return "".join(f"<{label}>" if i % 2 == 0 and piece.strip() else
                       piece if i % 2 == 0 else "{" + piece + "}"
                       for i, piece in enumerate(pieces))
    return {key: [(reword(inp, f"{key} {i} in"), reword(out, f"{key} {i} out"))
                  for i, (inp, out) in enumerate(pairs)] for key, pairs in FLAN_PATTERNS.items()}


# Rendered on mock data through a FLAN-shaped dict: the datasets that once had fields of
# other names, and one dataset of each shared group (registration checks every dataset's
# fields; rendering all would add minutes, and test_flan_tasks renders each one already).
FLAN_FIELD_NAMES_RENDERED = (
    "cnn_dailymail", "sst2", "stsb", "coqa", "dart", "e2e_nlg", "web_nlg_en", "common_gen",
    "opinion_abstracts_rotten_tomatoes", "opinion_abstracts_idebate", "record", "anli_r2",
    "mnli_matched", "para_crawl_enes", "wmt16_translate_deen")


def test_a_flan_shaped_patterns_dict_registers_every_dataset_and_renders():
    shaped = _flan_shaped_patterns()
    assert shaped["rte"][9] == ("<rte 9 in>", "<rte 9 out>{premise}<rte 9 out>{hypothesis}")
    try:
        names = registration.register_from_patterns(shaped)
        assert {n.rsplit("_10templates", 1)[0] for n in names if n.endswith("_10templates")} \
            == set(datasets.DATASETS)
        with tfds.testing.mock_data(num_examples=10):
            for name in FLAN_FIELD_NAMES_RENDERED:
                task = seqio.get_mixture_or_task(f"{name}_10templates")
                rows = list(show_task.rendered_examples(task, "test").as_numpy_iterator())
                assert rows, name
                for row in rows:
                    key = FLAN["pattern_names"][name]
                    i = int(row["template_idx"])
                    assert _text(row["inputs"]).startswith(
                        f"<{key} {i} in>" if shaped[key][i][0].startswith("<") else ""), name
                    assert not PLACEHOLDER.search(_text(row["inputs"]) + _text(row["targets"]))
    finally:
        flan.register()
    assert not _text(_templated("rte_type_9", {"premise": "p", "hypothesis": "h", "label": 0,
                                               "idx": 0})[0]["inputs"]).startswith("<")


# Our wording must not be FLAN's. Similarity of two templates: difflib's ratio over their
# instruction words (lower-cased, placeholders and punctuation dropped), input and target
# together, against every FLAN template of the same group. At 0.6 and above most of a
# template's words are FLAN's words in FLAN's order: the old wording had 106 templates there,
# the copies of issue 8 at 1.0 and one-word swaps such as "ask a question about" vs "pose a
# question about" at 0.75; our templates all stay below, the closest at 0.57 ("separate the
# words" vs "please segment the words"). Templates of fewer than 3 words ("{question}?",
# "Q: {question}") have no wording to copy.
SIMILARITY_LIMIT = 0.6
MIN_WORDS = 3


def _closest_flan(key: str, pair: tuple[str, str]) -> tuple[float, str]:
    """The highest difflib ratio of `pair`'s words to a FLAN template of the group (over
    word hashes, which gives the ratio over the words), and that template's skeleton."""
    words = flan_reference.word_hashes(" ".join(pair))
    return max((difflib.SequenceMatcher(None, words, flans["words"], autojunk=False).ratio(),
                flans["input"]) for flans in FLAN_PATTERN_FACTS[key])


def test_similarity_measure_catches_copies_and_near_copies():
    copies = {"xsum": ("Summarize this article in one sentence.\n\n{text}", "{summary}"),
              "ag_news_subset": ("{text}\nWhich topic is this article about?\n{options_}",
                                 "{answer}"),
              "yelp_polarity_reviews": ("Is the following review positive or negative?\n{text}"
                                        "\n{options_}", "{answer}"),
              "natural_questions": ("What is the answer to this question? {question}",
                                    "{answer}"),
              "mnli": ("Premise: {premise}\nHypothesis: {hypothesis}\nDoes the premise entail "
                       "the hypothesis?\n{options_}", "{answer}"),
              "squad_v1": ("Pose a question about {title}.", "{question}")}  # one word swapped
    for key, pair in copies.items():
        assert _closest_flan(key, pair)[0] >= SIMILARITY_LIMIT, key


def test_wording_is_our_own():
    too_close = []
    for key, pairs in patterns.PATTERNS.items():
        for i, pair in enumerate(pairs):
            if len(flan_reference.template_words(" ".join(pair))) < MIN_WORDS:
                continue
            ratio, flans = _closest_flan(key, pair)
            if ratio >= SIMILARITY_LIMIT:
                too_close.append(f"{key} {i} ({ratio:.2f}): {pair[0]!r} ~ FLAN's {key} "
                                 f"template shaped {flans!r}")
    assert not too_close, "\n".join(too_close)
