"""FLAN's `continuations_*` baseline tasks (tasks/flan/continuations.py).

Facts from FLAN 2021's code (google-research/FLAN at 3770e83): the task names come from the
stored reference (tools/flan_reference.py read them out of FLAN's registry); the fields of
each baseline prompt, the glm fields and the postprocessor's behaviour are written out by
hand below from flan/baseline_templates.py, flan/tasks.py (_process_rte, _process_cb,
_process_anli, _process_multirc, _process_copa, the continuations loop and
register_few_shot_versions_of_continuations_task) and flan/postprocessors.py
(parse_glm_qa_answer, remove_leading_quotes_and_spaces).
"""
import gzip
import json
import os
import re

import pytest
import seqio
import tensorflow as tf
import tensorflow_datasets as tfds

import tasks  # noqa: F401  (registers everything)
from tasks.flan import continuations, datasets, registration
from test_flan_tasks import _rendered, _text

REFERENCE = os.path.join(os.path.dirname(__file__), "data", "flan", "flan_2021_reference.json.gz")

# flan/baseline_templates.py: per template group, the fields of each prompt's input and
# target (FLAN's two translation prompts swap the language pair).
FLAN_BASELINE_FIELDS = {
    "anli": [({"context", "hypothesis"}, {"glm_answer"})],
    "cb": [({"premise", "hypothesis"}, {"glm_answer"})],
    "rte": [({"premise", "hypothesis"}, {"glm_answer"})],
    "arc": [({"question"}, {"answer"})],
    "bool_q": [({"text", "question"}, {"answer"})],
    "openbookqa": [({"fact", "question"}, {"answer"})],
    "copa": [({"glm_premise"}, {"answer"})],
    "hellaswag": [({"context"}, {"answer"})],
    "piqa": [({"goal"}, {"answer"})],
    "story_cloze": [({"context"}, {"answer"})],
    "record": [({"passage", "query"}, {"answer"})],
    "multirc": [({"paragraph", "question"}, {"glm_answer", "response"})],
    "winogrande": [({"context"}, {"answer"})],
    "common_gen": [({"concepts"}, {"target"})],
    "dart": [({"tripleset"}, {"target"})],
    "e2e_nlg": [({"meaning_representation"}, {"target"})],
    "web_nlg_en": [({"input_string"}, {"target"})],
    **{group: [({"lang2", "sent1"}, {"sent2"}), ({"lang1", "sent2"}, {"sent1"})]
       for group in ("para_crawl", "wmt14_enfr", "wmt16_translate")},
    "natural_questions": [({"question"}, {"answer"})],
    "trivia_qa": [({"question"}, {"answer"})],
    "wsc273": [({"context"}, {"answer"})],
}


def _fields(pattern: str) -> set[str]:
    return set(re.findall(r"\{(\w+)\}", pattern))


def test_every_flan_continuation_task_is_registered_and_no_other():
    with gzip.open(REFERENCE) as f:
        flan_names = {n for n in json.load(f)["task_names"] if n.startswith("continuations_")}
    ours = {n for n in seqio.TaskRegistry.names() if n.startswith("continuations_")}
    assert len(flan_names) == 234
    assert ours == flan_names


def test_prompt_structure_is_flans():
    assert set(continuations.PATTERNS) == set(FLAN_BASELINE_FIELDS)
    for group, prompts in continuations.PATTERNS.items():
        assert [(_fields(i), _fields(t)) for i, t in prompts] == FLAN_BASELINE_FIELDS[group], group


def test_few_shot_variants_are_flans():
    # FLAN: every ShotConfig but ZERO and MULTI, i.e. one, two, three, five and ten shots.
    assert continuations.CONTINUATION_SHOTS == {"_one_shot": 1, "_two_shot": 2,
                                                "_three_shot": 3, "_five_shot": 5,
                                                "_ten_shot": 10}
    assert "continuations_rte_type_0_scoring_eval_ten_shot" in seqio.TaskRegistry.names()
    assert "continuations_rte_type_0_scoring_eval_multi_shot" not in seqio.TaskRegistry.names()


def _glm(dataset, rows, fix_flan_quirks=False):
    spec = datasets.DATASETS[dataset]
    fields = tf.data.Dataset.from_tensor_slices(rows)
    group = "anli" if dataset.startswith("anli") else dataset
    out = continuations.add_glm_fields(fields, group, fix_flan_quirks)
    return [{k: (_text(v) if not hasattr(v, "shape") or v.shape == () else [_text(x) for x in v])
             for k, v in ex.items()} for ex in out.as_numpy_iterator()], spec


@pytest.mark.parametrize("dataset, answers, want", [
    # FLAN: glm options and options indexed by the same label one-hot.
    ("rte", ["yes", "no"], ["true", "false"]),
    ("anli_r1", ["Yes", "It's impossible to say", "No"], ["true", "neither", "false"]),
    ("multirc", ["no", "yes"], ["False", "True"]),
    # CB: options Yes / No / It's impossible to say, glm true / neither / false (FLAN's order).
    ("cb", ["Yes", "No", "It's impossible to say"], ["true", "neither", "false"]),
])
def test_glm_answer_follows_the_label(dataset, answers, want):
    options = list(datasets.DATASETS[dataset].options)
    rows = {"options": [options] * len(answers), "answer": answers}
    out, _ = _glm(dataset, rows)
    assert [ex["glm_answer"] for ex in out] == want
    assert all(ex["glm_options"] == list(continuations.GLM_OPTIONS[
        "anli" if dataset.startswith("anli") else dataset]) for ex in out)


def test_cb_glm_order_is_fixed_with_the_quirk_switch():
    options = list(datasets.DATASETS["cb"].options)
    out, _ = _glm("cb", {"options": [options] * 3, "answer": options}, fix_flan_quirks=True)
    assert [ex["glm_answer"] for ex in out] == ["true", "false", "neither"]


def test_copa_glm_premise():
    # FLAN: the premise's last character becomes " because" (cause) or " so" (effect).
    out, _ = _glm("copa", {"premise": ["My body cast a shadow over the grass.",
                                       "The woman repaired her faucet."],
                           "question": ["cause", "effect"]})
    assert [ex["glm_premise"] for ex in out] == [
        "My body cast a shadow over the grass because", "The woman repaired her faucet so"]


def test_rte_continuation_scores_glm_options(mock_tfds_cont):
    plain = _rendered("rte_type_0")
    rows = _rendered("continuations_rte_type_0_scoring_eval")
    assert len(rows) == 2 * len(plain)
    for i, ex in enumerate(plain):
        mine = [r for r in rows if r["idx"][0] == i]
        assert [_text(r["targets"]) for r in mine] == ["true", "false"]
        correct = [_text(r["targets"]) for r in mine if r["is_correct"]]
        assert correct == [{"yes": "true", "no": "false"}[_text(ex["targets"])]]
        # The bare continuation prompt: premise first, no options, no instruction wrapper.
        assert "OPTIONS" not in _text(mine[0]["inputs"])


def test_generation_continuation_renders(mock_tfds_cont):
    rows = _rendered("continuations_wmt16_translate_deen_type_1")
    assert rows and all(_text(r["inputs"]).endswith("Answer:") for r in rows)


def test_parse_continuation_answer():
    parse = continuations.continuation_answer
    # Cut where the model starts the next prompt; leading non-letters dropped (FLAN drops
    # digits too: a FLAN quirk, fixed with the quirk switch).
    assert parse(" Paris.\n\nQuestion: Where is Rome?\nAnswer: Italy") == "Paris.\n\n"
    assert parse('"Bonjour" Keywords: dog') == 'Bonjour" '
    assert parse(" 1984 by Orwell") == "by Orwell"
    assert parse(" 1984 by Orwell", fix_flan_quirks=True) == "1984 by Orwell"
    assert parse("x", {"answers": [b"a", b"b"]}, is_target=True) == ["a", "b"]
    assert parse("x", {"answer": b"a"}, is_target=True) == "x"
    # Our stop markers are the openings of our own generation prompts.
    openings = {p[0].split(" ")[0] for group, prompts in continuations.PATTERNS.items()
                for p in prompts if "{" != p[0][0]}
    for marker in continuations.STOP_MARKERS:
        assert marker in openings


def test_classification_follows_flan_classification_groups():
    with gzip.open(REFERENCE) as f:
        classification = set(json.load(f)["classification_patterns"])
    for name in seqio.TaskRegistry.names():
        if name.startswith("continuations_") and name.endswith(("_type_0", "_type_1")):
            dataset = re.sub(r"^continuations_|_type_\d+$", "", name)
            assert registration.patterns_lib.pattern_name(dataset) not in classification


@pytest.fixture
def mock_tfds_cont():
    with tfds.testing.mock_data(num_examples=6):
        yield
