"""Tests for the template engine (flan_jax.templates) and its TF twin (flan_jax.preprocessors)."""
import numpy as np
import pytest
import tensorflow as tf

from flan_jax import preprocessors
from flan_jax import templates
from flan_jax.templates import Template

NLI_EXAMPLE = {
    "premise": "Ana is taller than Bram.",
    "hypothesis": "Bram is shorter than Ana.",
    "answer": "yes",
    "options": ["yes", "it is not possible to tell", "no"],
}


def _dataset(examples):
    columns = {k: [ex[k] for ex in examples] for k in examples[0]}
    return tf.data.Dataset.from_tensor_slices(columns)


def _decoded(dataset):
    out = []
    for ex in dataset.as_numpy_iterator():
        out.append({k: v.decode() if isinstance(v, bytes) else v for k, v in ex.items()})
    return out


# --- Python rendering ---------------------------------------------------------


def test_render_fills_fields_in_input_and_target():
    t = Template("Premise: {premise}\nHypothesis: {hypothesis}", "Answer: {answer}")
    assert t.render(NLI_EXAMPLE) == (
        "Premise: Ana is taller than Bram.\nHypothesis: Bram is shorter than Ana.",
        "Answer: yes",
    )


def test_options_slot_renders_one_line_per_option():
    t = Template("{premise}\n\nIs it so?\n\n{options_}", "{answer}")
    inputs, targets = t.render(NLI_EXAMPLE)
    assert inputs == (
        "Ana is taller than Bram.\n\nIs it so?\n\n"
        "OPTIONS:\n- yes\n- it is not possible to tell\n- no")
    assert targets == "yes"
    assert templates.render_options(["a", b"b"]) == "OPTIONS:\n- a\n- b"


def test_escaped_braces_stay_literal_and_values_are_not_reformatted():
    t = Template("{{not a field}} {x}", "{{{x}}}")
    assert t.render({"x": "v"}) == ("{not a field} v", "{v}")
    # A value that looks like a placeholder is data, not a template.
    assert t.render({"x": "{premise}"}) == ("{not a field} {premise}", "{{premise}}")


def test_fields_are_ordered_unique_and_exclude_options():
    t = Template("{b} {a}\n{options_} {b}", "{answer} {a}")
    assert t.fields == ("b", "a", "answer")
    assert t.uses_options
    assert not Template("{a}", "{b}").uses_options


@pytest.mark.parametrize(
    "bad", ["{", "}", "a } b", "{}", "{0}", "{a.b}", "{a[0]}", "{a!r}", "{a:>5}"])
def test_malformed_format_strings_are_rejected(bad):
    with pytest.raises(ValueError, match="malformed template"):
        Template(bad, "{answer}")
    with pytest.raises(ValueError, match="malformed template"):
        Template("{question}", bad)


def test_render_missing_field_raises_key_error():
    with pytest.raises(KeyError):
        Template("{nope}", "x").render({"a": "1"})


# --- Validation ---------------------------------------------------------------


def test_validate_names_task_template_index_missing_field_and_available_fields():
    ts = [Template("{premise}", "{answer}"), Template("{premise} {hypothesis}", "{answer}")]
    with pytest.raises(ValueError) as info:
        templates.validate_templates("mini_rte", ts, ["premise", "answer"])
    message = str(info.value)
    assert "mini_rte" in message
    assert "template 1" in message
    assert "'hypothesis'" in message
    assert "['answer', 'premise']" in message


def test_validate_requires_options_field_for_options_slot():
    ts = [Template("{premise}\n\n{options_}", "{answer}")]
    templates.validate_templates("t", ts, ["premise", "answer", "options"])
    with pytest.raises(ValueError, match=r"template 0 .*'options'"):
        templates.validate_templates("t", ts, ["premise", "answer"])


def test_validate_rejects_empty_template_list():
    with pytest.raises(ValueError, match="mini_x: no templates"):
        templates.validate_templates("mini_x", [], ["a"])


# --- FLAN-style PATTERNS ------------------------------------------------------


def test_load_patterns_reads_a_flan_style_dict_unchanged():
    patterns = {
        "rte": [
            ("{premise}\n\nCan we say that \"{hypothesis}\"?\n\n{options_}", "{answer}"),
            ("Premise: {premise}\nHypothesis: {hypothesis}\n{options_}", "{answer}"),
        ],
        "wmt_toy": [("Translate: {sentence}", "{translation}")],
    }
    loaded = templates.load_patterns(patterns)
    assert list(loaded) == ["rte", "wmt_toy"]
    assert loaded["rte"][1] == Template(*patterns["rte"][1])
    assert loaded["wmt_toy"][0].render({"sentence": "hi", "translation": "salut"}) == (
        "Translate: hi", "salut")
    assert loaded["rte"][0].render(NLI_EXAMPLE)[0].endswith(
        "OPTIONS:\n- yes\n- it is not possible to tell\n- no")


def test_load_patterns_error_names_dataset_and_index():
    with pytest.raises(ValueError, match=r"^cola: template 1: malformed template"):
        templates.load_patterns({"cola": [("{sentence}", "{answer}"), ("{sentence", "{answer}")]})


# --- Round robin --------------------------------------------------------------


def test_round_robin_uses_template_i_mod_n():
    ts = [Template(f"t{k}: {{x}}", "{x}") for k in range(3)]
    examples = [{"x": str(i)} for i in range(7)]
    rendered = templates.render_round_robin(ts, examples)
    assert [inputs for inputs, _ in rendered] == [f"t{i % 3}: {i}" for i in range(7)]
    assert templates.template_index(10, 4) == 2


def test_apply_templates_tf_matches_python_round_robin():
    ts = [
        Template("{premise}\n\nTrue that \"{hypothesis}\"?\n\n{options_}", "{answer}"),
        Template("Answer {answer}. {{braces}} Write a claim about: {premise}", "{hypothesis}"),
        Template("#{n}: {hypothesis}\n{options_}", "{answer}"),
        Template("", "{answer}"),
    ]
    examples = [
        {"premise": f"P{i} caf\u00e9 {{x}} \\n", "hypothesis": f"H{i}",
         "answer": ["yes", "no"][i % 2], "n": i, "options": ["yes", "no"]}
        for i in range(9)
    ]
    out = _decoded(preprocessors.apply_templates(_dataset(examples), ts))
    expected = templates.render_round_robin(ts, examples)
    assert [(ex["inputs"], ex["targets"]) for ex in out] == expected
    assert [ex["template_idx"] for ex in out] == [i % 4 for i in range(9)]
    assert all(list(ex["options"]) == [b"yes", b"no"] for ex in out)
    assert set(out[0]) == {"inputs", "targets", "template_idx", "options"}


def test_apply_templates_without_options_keeps_only_text_and_index():
    ts = [Template("Reverse {word}", "{answer}")]
    out = _decoded(preprocessors.apply_templates(_dataset([{"word": "abc", "answer": "cba"}]), ts))
    assert out == [{"inputs": "Reverse abc", "targets": "cba", "template_idx": 0}]


def test_apply_templates_rejects_float_fields_and_empty_template_list():
    ds = _dataset([{"x": 0.5}])
    with pytest.raises(TypeError, match="strings or integers"):
        preprocessors.apply_templates(ds, [Template("{x}", "{x}")])
    with pytest.raises(ValueError):
        preprocessors.apply_templates(ds, [])


# --- Ablations ----------------------------------------------------------------

SENTIMENT_TEMPLATES = [
    Template("{sentence}\n\nPositive or negative?\n\n{options_}", "{answer}"),
    Template("Review: {sentence}\nHow does it feel?\n{options_}", "{answer}"),
    Template("Write a {answer} review.", "{sentence}"),
]


def test_no_template_keeps_only_fields_and_options():
    derived = templates.no_template(SENTIMENT_TEMPLATES)
    assert derived == [
        Template("{sentence}\n\n{options_}", "{answer}"),  # both instructions collapse
        Template("{answer}", "{sentence}"),  # the turned-around direction survives
    ]
    example = {"sentence": "The soup was bland.", "answer": "negative",
               "options": ["negative", "positive"]}
    assert derived[0].render(example) == (
        "The soup was bland.\n\nOPTIONS:\n- negative\n- positive", "negative")


def test_no_template_drops_templates_whose_input_reads_no_field():
    derived = templates.no_template(
        [Template("{premise}\n{options_}", "{answer}"),
         Template("Make up a passage and a claim.", "Passage: {premise}\nClaim: {hypothesis}")])
    assert derived == [Template("{premise}\n\n{options_}", "{answer}")]


def test_no_template_joins_several_fields_one_per_line():
    derived = templates.no_template([Template("Q: {question} Context: {context}", "{answer}")])
    assert derived == [Template("{question}\n{context}", "{answer}")]


def test_dataset_name_prefixes_cluster_and_dataset():
    derived = templates.dataset_name(SENTIMENT_TEMPLATES, "Sentiment", "mini_sentiment")
    example = {"sentence": "The soup was bland.", "answer": "negative",
               "options": ["negative", "positive"]}
    assert derived[0].render(example) == (
        "[Sentiment: mini_sentiment] The soup was bland.\n\nOPTIONS:\n- negative\n- positive",
        "negative")
    assert len(derived) == 2
    # Braces in names are literal text, not placeholders.
    odd = templates.dataset_name(SENTIMENT_TEMPLATES[:1], "C{1}", "d")
    assert odd[0].render(example)[0].startswith("[C{1}: d] The soup")


# --- Rank classification ------------------------------------------------------


def test_rank_classification_expand_one_row_per_option():
    ts = [Template("{premise}\n{options_}", "{answer}"), Template("Say {answer}", "{premise}")]
    examples = [
        {"premise": "A", "answer": "no", "options": ["yes", "it is not possible to tell", "no"]},
        {"premise": "B", "answer": "yes", "options": ["yes", "it is not possible to tell", "no"]},
        {"premise": "C", "answer": "yes", "options": ["yes", "it is not possible to tell", "no"]},
    ]
    formatted = preprocessors.apply_templates(_dataset(examples), ts)
    rows = _decoded(preprocessors.rank_classification_expand(formatted))
    # Example 1 used the turned-around template (target "B" is no option): dropped.
    assert len(rows) == 6
    assert [r["targets"] for r in rows] == ["yes", "it is not possible to tell", "no"] * 2
    assert [bool(r["is_correct"]) for r in rows] == [False, False, True, True, False, False]
    assert [tuple(r["idx"]) for r in rows] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert {r["inputs"] for r in rows[:3]} == {
        "A\nOPTIONS:\n- yes\n- it is not possible to tell\n- no"}
    assert [r["template_idx"] for r in rows] == [0] * 6

    train_rows = _decoded(preprocessors.rank_classification_expand(formatted, mode="train"))
    assert [r["targets"] for r in train_rows] == ["no", "yes"]
    assert np.all([r["is_correct"] for r in train_rows])
