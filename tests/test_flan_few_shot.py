"""FLAN's few-shot tasks: exemplar format, pruning budget, shot counts, scoring rows.

Expected values come from FLAN's code (google-research/FLAN at 3770e83; its few-shot
code is unchanged at HEAD), two ways:
- written by hand from reading it: flan/few_shot.py:44-53 (the delimiter defaults
  " X ", "0 ", "1 ", " X ", " FLAN"), :92-99 (x_y_delimiter appended to every input,
  exemplar and eval), :114-135 (prune, then seqio's fewshot_preprocessor, then
  remove_trailing_spaces), :141-148 (final_suffix after the whole input), :150-151 (rank
  classification after the few-shot input is formed); flan/preprocessors.py:440-473
  (token counts of input + delimiter and target, kept while their running sum is at most
  max_input_length minus the eval input's); flan/tasks.py:2203-2232 (ShotConfig one, two,
  three, five, ten and multi = 16 shots), :2288-2325 and :2398-2402 (960 tokens, for
  `_type_{i}`, `_type_{i}_scoring_eval` and `_{N}templates`), :2235-2257 (the format of
  its continuations_* tasks: " ", "", "", "\\n\\n", "", unpruned);
- recorded from FLAN's code itself by tools/flan_reference.py --few_shot
  (tests/data/flan/flan_2021_few_shot.json): the arguments of every few-shot task FLAN's
  tasks.py registers, and FLAN's few-shot tasks rendered on hand-written rows.
"""
import functools
import itertools
import os
import re
import sys
from unittest import mock

import pytest
import seqio
import tensorflow as tf
import tensorflow_datasets as tfds

import tasks  # noqa: F401  (registers everything)
from flan_jax import vocabularies
from flan_jax.templates import Template
from tasks.flan import continuations, datasets, mixtures, patterns, registration

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "tools"))
import flan_reference  # noqa: E402
import show_task  # noqa: E402

FLAN_FEW_SHOT = flan_reference.load_few_shot()
FLAN_KINDS = ("type", "scoring_eval", "templates")  # FLAN's few-shot instruction tasks
NUM_MOCK = 6


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _format(train_inputs, train_targets, eval_input, *, fmt, max_input_length=None,
            vocabulary=None) -> str:
    """registration.fewshot_format on one hand-written FewshotDataSource example."""
    ds = tf.data.Dataset.from_tensors({
        "train": {"inputs": tf.constant(train_inputs, tf.string),
                  "targets": tf.constant(train_targets, tf.string)},
        "eval": {"inputs": eval_input, "targets": "gold"}})
    features = None
    if vocabulary is not None:
        features = {k: seqio.Feature(vocabulary) for k in ("inputs", "targets")}
    out = next(registration.fewshot_format(ds, features, fmt=fmt,
                                           max_input_length=max_input_length)
               .as_numpy_iterator())
    assert _text(out["targets"]) == "gold"
    return _text(out["inputs"])


# --- The format: FLAN's strings -------------------------------------------------------------


def test_formats_are_flans():
    # flan/few_shot.py:47-51, by hand, and as recorded from FLAN's signature.
    assert registration.DIALOG_FEWSHOT == registration.FewshotFormat(
        x_y_delimiter=" X ", inputs_prefix="0 ", targets_prefix="1 ",
        example_separator=" X ", final_suffix=" FLAN")
    assert FLAN_FEW_SHOT["format_defaults"] == vars(registration.DIALOG_FEWSHOT)
    # flan/tasks.py:2239-2243, FLAN's format without the dialog wrapper.
    assert registration.PLAIN_FEWSHOT == registration.FewshotFormat(
        x_y_delimiter=" ", inputs_prefix="", targets_prefix="", example_separator="\n\n",
        final_suffix="")
    for kind, fmt in (("type", registration.DIALOG_FEWSHOT),
                      ("continuations", registration.PLAIN_FEWSHOT)):
        for suffix, calls in FLAN_FEW_SHOT["registered"][kind].items():
            assert {k: calls[k] for k in vars(fmt)} == {k: [v] for k, v in vars(fmt).items()}


def test_two_shot_input_exactly():
    dialog = _format(["Is it red?", "Is it blue?"], ["yes", "no"], "Is it green?",
                     fmt=registration.DIALOG_FEWSHOT)
    assert dialog == "0 Is it red? X 1 yes X 0 Is it blue? X 1 no X 0 Is it green? X 1 FLAN"
    plain = _format(["Is it red?", "Is it blue?"], ["yes", "no"], "Is it green?",
                    fmt=registration.PLAIN_FEWSHOT)
    assert plain == "Is it red? yes\n\nIs it blue? no\n\nIs it green?"


def test_whole_input_is_stripped_before_the_suffix():
    # FLAN's remove_trailing_spaces (tf.strings.strip) runs on the whole formed input.
    plain = _format(["\n a ", "b"], ["c", "d"], "e \n", fmt=registration.PLAIN_FEWSHOT)
    assert plain == "a  c\n\nb d\n\ne"
    dialog = _format(["a "], ["c"], "e ", fmt=registration.DIALOG_FEWSHOT)
    assert dialog == "0 a  X 1 c X 0 e  X 1 FLAN"


def test_eval_features_pass_through():
    ds = tf.data.Dataset.from_tensors({
        "train": {"inputs": tf.constant(["a"]), "targets": tf.constant(["b"])},
        "eval": {"inputs": "q", "targets": "t", "options": tf.constant(["yes", "no"]),
                 "template_idx": 3}})
    out = next(registration.fewshot_format(ds, max_input_length=None).as_numpy_iterator())
    assert [_text(o) for o in out["options"]] == ["yes", "no"] and out["template_idx"] == 3


# --- Pruning: FLAN's rule and budget --------------------------------------------------------

BYTES = flan_reference.few_shot_vocabulary()  # one token per ASCII character


@pytest.mark.parametrize("budget, kept", [(3, 0), (12, 0), (13, 1), (23, 1), (24, 2)])
def test_pruning_keeps_exemplars_while_they_fit(budget, kept):
    # Counted as FLAN counts: exemplar 1 = "aaaa X " (7) + "y" (1) = 8, exemplar 2 =
    # "bbbbbb X " (9) + "zz" (2) = 11, eval input "qq X " = 5, so exemplar 1 fits from
    # 13 (8 <= 13 - 5) and both from 24 (19 <= 24 - 5). Prefixes, separators, the
    # suffix and EOS are not counted; the eval input stays even when it alone is over.
    out = _format(["aaaa", "bbbbbb"], ["y", "zz"], "qq", fmt=registration.DIALOG_FEWSHOT,
                  max_input_length=budget, vocabulary=BYTES)
    shots = ["0 aaaa X 1 y X ", "0 bbbbbb X 1 zz X "][:kept]
    assert out == "".join(shots) + "0 qq X 1 FLAN"


def test_pruning_counts_the_plain_delimiter_and_keeps_a_prefix():
    # Plain: exemplar 1 = "aaaaaaaaaa " (11) + "y" = 12, exemplar 2 = "b " (2) + "z" = 3,
    # eval "qq " = 3. Budget 14: exemplar 1 does not fit (12 > 11); exemplar 2 would, but
    # FLAN keeps a running sum (15 > 11), so a short exemplar after a long one goes too.
    args = (["aaaaaaaaaa", "b"], ["y", "z"], "qq")
    kw = dict(fmt=registration.PLAIN_FEWSHOT, vocabulary=BYTES)
    assert _format(*args, max_input_length=14, **kw) == "qq"
    assert _format(*args, max_input_length=15, **kw) == "aaaaaaaaaa y\n\nqq"
    assert _format(*args, max_input_length=18, **kw) == "aaaaaaaaaa y\n\nb z\n\nqq"


def test_budget_and_shot_counts_are_flans():
    registered = FLAN_FEW_SHOT["registered"]
    # flan/few_shot.py ShotConfig and flan/tasks.py:2226-2232: multi is 16 for every task.
    expected = {"_one_shot": 1, "_two_shot": 2, "_three_shot": 3, "_five_shot": 5,
                "_ten_shot": 10, "_multi_shot": 16}
    assert mixtures.SHOTS == expected
    assert registration.FEWSHOT_MAX_INPUT_LENGTH == 960
    for kind in FLAN_KINDS:
        assert {s: calls["num_shots"] for s, calls in registered[kind].items()} == {
            s: [n] for s, n in expected.items()}
        for calls in registered[kind].values():
            assert calls["prune_exemplars"] == [True] and calls["max_input_length"] == [960]
    for step in registration.FEWSHOT_STEPS.values():
        assert step.keywords["max_input_length"] == 960


def test_few_shot_tasks_of_flans_kinds_only():
    """Few-shot variants exist for FLAN's three kinds, as many as FLAN's, with its shots."""
    registered = FLAN_FEW_SHOT["registered"]
    by_kind = {kind: {suffix: 0 for suffix in mixtures.SHOTS} for kind in FLAN_KINDS}
    ours = tuple(f"{d}_" for d in datasets.DATASETS)
    for name in seqio.TaskRegistry.names():
        suffix = next((s for s in mixtures.SHOTS if name.endswith(s)), None)
        if suffix is None or not name.startswith(ours):
            continue
        kind = flan_reference.few_shot_kind(name[:-len(suffix)])
        assert kind in FLAN_KINDS, name  # not _all_prompts, _no_options, ablations
        by_kind[kind][suffix] += 1
        task = seqio.TaskRegistry.get(name)
        assert isinstance(task.source, seqio.experimental.FewshotDataSource), name
        assert task.source._num_shots == mixtures.SHOTS[suffix], name
        assert task.preprocessors[0] is registration.FEWSHOT_STEPS[False], name
    assert by_kind == {kind: {s: c["tasks"] for s, c in registered[kind].items()}
                       for kind in FLAN_KINDS}


def test_continuations_few_shot_tasks_are_flans():
    """continuations_*: FLAN's undialoged format, unpruned, 1 to 10 shots, as many tasks."""
    registered = FLAN_FEW_SHOT["registered"]
    step = registration.CONTINUATIONS_FEWSHOT_STEP
    assert step.keywords == {"fmt": registration.PLAIN_FEWSHOT, "max_input_length": None}
    assert (registration.PLAIN_FEWSHOT.x_y_delimiter,
            registration.PLAIN_FEWSHOT.example_separator) == (
        continuations.CONTINUATION_X_Y_DELIMITER, continuations.CONTINUATION_EXAMPLE_SEPARATOR)
    counts = {}
    for name in seqio.TaskRegistry.names():
        suffix = next((s for s in mixtures.SHOTS if name.endswith(s)), None)
        if suffix is None or not name.startswith("continuations_"):
            continue
        kind = flan_reference.few_shot_kind(name[:-len(suffix)])
        counts.setdefault(kind, {}).setdefault(suffix, 0)
        counts[kind][suffix] += 1
        task = seqio.TaskRegistry.get(name)
        assert task.source._num_shots == mixtures.SHOTS[suffix], name
        assert task.preprocessors[0] is step, name
    assert counts == {kind: {s: c["tasks"] for s, c in registered[kind].items()}
                      for kind in ("continuations", "continuations_scoring_eval")}
    for kind in ("continuations", "continuations_scoring_eval"):
        for calls in registered[kind].values():
            assert calls["prune_exemplars"] == [False] and calls["max_input_length"] == [None]


# --- Our tasks against FLAN's own few-shot code, on the same rows --------------------------


def _register_reference_dataset(name: str, dialog_prompt: bool) -> list[str]:
    """FLAN_FEW_SHOT's rows and templates as our collection tasks, counted in bytes."""
    features = {k: seqio.Feature(BYTES, add_eos=True) for k in ("inputs", "targets")}
    steps = {dialog: functools.partial(registration.fewshot_format, fmt=fmt,
                                       max_input_length=FLAN_FEW_SHOT["max_input_length"])
             for dialog, fmt in ((False, registration.PLAIN_FEWSHOT),
                                 (True, registration.DIALOG_FEWSHOT))}
    source = flan_reference.few_shot_source(FLAN_FEW_SHOT["rows"],
                                            tuple(FLAN_FEW_SHOT["options"]))
    with mock.patch.object(registration, "OUTPUT_FEATURES", features), \
            mock.patch.dict(registration.FEWSHOT_STEPS, steps):
        return registration.register_dataset_tasks(
            name, [Template(*t) for t in FLAN_FEW_SHOT["templates"]], source=source,
            available_fields=("text", "answer", "options"), is_classification=True,
            dialog_prompt=dialog_prompt)


def _rendered_reference(task_name: str, keys) -> list[dict]:
    ds = show_task.rendered_examples(seqio.get_mixture_or_task(task_name), "test")
    return [{k: (bool(r[k]) if k == "is_correct" else _text(r[k])) for k in keys}
            for r in ds.as_numpy_iterator()]


@pytest.mark.parametrize("dialog_prompt, flan_format",
                         [(True, "dialog"), (False, "continuations")])
def test_rendered_as_flans_code_renders(dialog_prompt, flan_format):
    """Byte for byte: exemplars drawn, pruned and joined as FLAN's code does."""
    name = f"my_few_shot_{flan_format}"
    names = _register_reference_dataset(name, dialog_prompt)
    try:
        theirs = FLAN_FEW_SHOT["rendered"][flan_format]
        for kind, task in (("generation", f"{name}_type_0"),
                           ("scoring_eval", f"{name}_type_0_scoring_eval")):
            for suffix, flan_rows in theirs[kind].items():
                assert _rendered_reference(task + suffix, flan_rows[0]) == flan_rows, suffix
    finally:
        for task_name in names:
            seqio.TaskRegistry.remove(task_name)


def test_a_shorter_input_length_trims_the_end():
    """The budget is FLAN's 960 whatever the run's input length: seqio's trim then cuts the
    end of a long few-shot input, the eval input first (FLAN_TOKENIZE trims the same way)."""
    names = _register_reference_dataset("my_few_shot_trim", dialog_prompt=True)
    try:
        task = seqio.get_mixture_or_task("my_few_shot_trim_type_0_two_shot")
        full = _rendered_reference(task.name, ["inputs"])[0]["inputs"]
        assert full.endswith(" X 0 Is it so? short X 1 FLAN") and len(full) > 40
        ex = next(task.get_dataset({"inputs": 40, "targets": 8}, split="test", shuffle=False,
                                   use_cached=False).as_numpy_iterator())
        assert len(ex["inputs"]) == 40 and ex["inputs"][-1] == 1  # 39 bytes + EOS
        assert BYTES.decode(ex["inputs"][:-1].tolist()) == full[:39]
    finally:
        for task_name in names:
            seqio.TaskRegistry.remove(task_name)


def _template_layout(text: str, dialog_prompt: bool) -> tuple[list[int], str]:
    """A few-shot input of the reference rows -> (each exemplar's template, the eval part).

    The rows and templates hold neither " X " nor a blank line, so these split it.
    """
    if dialog_prompt:  # "0 x1 X 1 y1 X ... X 0 x X 1 FLAN"
        parts = text.split(" X ")
        shots, final = [p[2:] for p in parts[:-2:2]], parts[-2][2:]
    else:  # "x1 y1\n\n...\n\nx"
        *shots, final = text.split("\n\n")
    starts = [inputs.split("{")[0] for inputs, _ in FLAN_FEW_SHOT["templates"]]
    return [next(i for i, s in enumerate(starts) if shot.startswith(s)) for shot in shots], final


def _drawn_texts(task_name: str) -> list[list[str]]:
    """The "text" field of each exemplar the task's FewshotDataSource draws, per example."""
    source = seqio.get_mixture_or_task(task_name).source
    texts = []
    for ex in source.get_dataset("test", shuffle=False).as_numpy_iterator():
        texts.append([])
        for rendered in ex["train"]["inputs"]:  # "Is it so? {text}" or "Really, {text}?"
            match = re.fullmatch(r"Is it so\? (.*)|Really, (.*)\?", _text(rendered))
            texts[-1].append(match[1] if match[1] is not None else match[2])
    return texts


@pytest.mark.parametrize("dialog_prompt, flan_format",
                         [(True, "dialog"), (False, "continuations")])
def test_round_robin_exemplars_as_flans(dialog_prompt, flan_format):
    """`_{N}templates`: exemplars take the templates round robin by position, as FLAN's.

    Which train rows are drawn differs: FLAN's batch formatter zips two passes over the
    reshuffling train split and takes the templated text from the second, so its
    `_{N}templates` tasks draw other exemplars than its one-template tasks (with the same
    seed); ours draw the same as our one-template tasks. Both are draws from the shuffled
    train split.
    """
    name = f"my_few_shot_{flan_format}"
    names = _register_reference_dataset(name, dialog_prompt)
    try:
        for suffix, flan_rows in FLAN_FEW_SHOT["rendered"][flan_format]["templates"].items():
            mine = _rendered_reference(f"{name}_2templates{suffix}", flan_rows[0])
            assert len(mine) == len(flan_rows)
            for ours, theirs in zip(mine, flan_rows):
                assert ours["targets"] == theirs["targets"]
                our_ids, our_final = _template_layout(ours["inputs"], dialog_prompt)
                flan_ids, flan_final = _template_layout(theirs["inputs"], dialog_prompt)
                assert our_final == flan_final  # the eval input: template by position
                # exemplar i of a batch uses template i % 2 (batches start at even positions)
                for ids in (our_ids, flan_ids):
                    assert ids == [i % 2 for i in range(len(ids))], (suffix, ours, theirs)
            layouts = [_template_layout(r["inputs"], dialog_prompt)[0] for r in flan_rows]
            assert max(map(len, layouts)) >= 2  # the check sees both templates
            # Ours draw the rows of our one-template tasks (FLAN's rows, as tested above).
            assert _drawn_texts(f"{name}_2templates{suffix}") == _drawn_texts(
                f"{name}_type_0{suffix}")
    finally:
        for task_name in names:
            seqio.TaskRegistry.remove(task_name)


def test_flan_reference_rows_exercise_pruning():
    """The recorded rows prune: multi-shot keeps fewer than 16, the long input none."""
    dialog = FLAN_FEW_SHOT["rendered"]["dialog"]["generation"]
    kept = [r["inputs"].count(" X 1 ") - 1 for r in dialog["_multi_shot"]]
    assert min(kept[:2] + kept[3:]) > 0 and max(kept) < 16 and kept[2] == 0


def _step_names(task_name: str) -> list[str]:
    return [getattr(getattr(p, "func", p), "__name__", type(p).__name__)
            for p in seqio.TaskRegistry.get(task_name).preprocessors]


def test_step_order_is_flans():
    # FLAN: prune, join, strip, suffix, then one row per option, then tokens.
    assert FLAN_FEW_SHOT["steps"]["rte_type_0_scoring_eval_two_shot"] == [
        "get_fewshot_num_tokens", "prune_fewshot_examples_by_length", "fewshot_preprocessor",
        "remove_trailing_spaces", "reformat_passthrough", "rank_classification_from_options",
        "tokenize", "CacheDatasetPlaceholder", "append_eos_after_trim"]
    # Ours: the first four in fewshot_format. No cache placeholder: a cache would freeze
    # the exemplars drawn on the caching pass.
    assert _step_names("rte_type_0_scoring_eval_two_shot") == [
        "fewshot_format", "rank_classification_from_answer", "tokenize",
        "append_eos_after_trim"]
    assert _step_names("rte_type_0_two_shot") == [
        "fewshot_format", "tokenize", "append_eos_after_trim"]


# --- The collection on TFDS mock data -------------------------------------------------------


@pytest.fixture(scope="module")
def local_vocabulary(tmp_path_factory):
    """A small SentencePiece model, so that pruning can count tokens offline."""
    import sentencepiece as spm
    tmp = tmp_path_factory.mktemp("spm")
    corpus = tmp / "corpus.txt"
    corpus.write_text("\n".join(["Premise hypothesis yes no OPTIONS question answer."] * 50
                                + [f"word{i} text {i}" for i in range(200)]))
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(tmp / "sp"),
                                   vocab_size=100, model_type="unigram",
                                   pad_id=0, eos_id=1, unk_id=2, bos_id=-1)
    vocabularies.set_vocabulary_path(str(tmp / "sp.model"))
    yield
    vocabularies.set_vocabulary_path(None)


def _rendered(task_name: str, split: str = "validation") -> list[dict]:
    task = seqio.get_mixture_or_task(task_name)
    # Mock data has no split metadata, so FewshotDataSource cannot list file shards.
    with mock.patch.object(registration.FlanTfdsSource, "list_shards", return_value=[]):
        return list(show_task.rendered_examples(task, split).as_numpy_iterator())


@pytest.fixture
def rte_dialog():
    """RTE registered with FLAN's dialog wrapper (the switch on)."""
    templates = [Template(*p) for p in patterns.PATTERNS["rte"]]
    names = registration.register_flan_dataset("my_rte_few_shot", templates,
                                               datasets.DATASETS["rte"], dialog_prompt=True)
    yield "my_rte_few_shot"
    for name in names:
        seqio.TaskRegistry.remove(name)
    registration.REGISTERED.pop("my_rte_few_shot")


def test_mock_data_two_shot_dialog(local_vocabulary, rte_dialog):
    with tfds.testing.mock_data(num_examples=NUM_MOCK):
        zero = _rendered("rte_type_0")  # the switch off: the bare templated input
        train = {(_text(r["inputs"]), _text(r["targets"])) for r in _rendered("rte_type_0",
                                                                               "train")}
        few = _rendered(f"{rte_dialog}_type_0_two_shot")
    assert len(few) == len(zero) == NUM_MOCK
    for z, f in zip(zero, few):
        parts = _text(f["inputs"]).split(" X ")  # mock text holds no " X "
        assert len(parts) == 6 and parts[4:] == [f"0 {_text(z['inputs'])}", "1 FLAN"]
        for x, y in (parts[0:2], parts[2:4]):
            assert x.startswith("0 ") and y.startswith("1 ")
            assert (x[2:], y[2:]) in train  # a train example, templated, unwrapped
        assert _text(f["targets"]) == _text(z["targets"])


def test_mock_data_few_shot_variants(local_vocabulary):
    # Moved from test_flan_tasks.py::test_few_shot_variants: its "\n\n" between input and
    # target was our old layout; this is FLAN's without dialog markers (PLAIN_FEWSHOT).
    names = set(seqio.TaskRegistry.names())
    for suffix in mixtures.SHOTS:
        assert f"rte_10templates{suffix}" in names and f"rte_type_3{suffix}" in names
        assert f"flan_inter_cluster_split_0_10templates{suffix}_train" in set(
            seqio.MixtureRegistry.names())
    with tfds.testing.mock_data(num_examples=NUM_MOCK):
        zero = _rendered("rte_type_0")
        train = [(_text(r["inputs"]), _text(r["targets"])) for r in _rendered("rte_type_0",
                                                                               "train")]
        few = _rendered("rte_type_0_two_shot")
    assert len(few) == len(zero) == NUM_MOCK
    two_shot = 0
    for z, f in zip(zero, few):
        assert _text(f["targets"]) == _text(z["targets"])
        # FLAN's layout: "x1 y1\n\nx2 y2\n\nx" for two train exemplars that fit.
        layouts = {"".join(f"{x} {y}\n\n" for x, y in shots) + _text(z["inputs"])
                   for shots in itertools.product(train, repeat=2)}
        two_shot += _text(f["inputs"]) in {layout.strip() for layout in layouts}
    assert two_shot == NUM_MOCK  # mock inputs are short: nothing pruned


def test_mock_data_scoring_rows_hold_the_exemplars(local_vocabulary):
    # Moved from test_flan_fidelity.py::test_few_shot_scoring_rows (same assertions).
    with tfds.testing.mock_data(num_examples=4):
        zero = _rendered("rte_type_0_scoring_eval")
        few = _rendered("rte_type_0_scoring_eval_two_shot")
    assert len(few) == len(zero) == 2 * 4  # one row per option ("yes", "no")
    for z, f in zip(zero, few):
        assert _text(f["inputs"]).endswith(_text(z["inputs"]).strip())
        assert len(_text(f["inputs"])) > len(_text(z["inputs"]))
        assert (_text(f["targets"]), bool(f["is_correct"])) == (_text(z["targets"]),
                                                                 bool(z["is_correct"]))
    assert sum(bool(r["is_correct"]) for r in few) == 4
    for a, b in zip(few[::2], few[1::2]):  # both rows of an example: the same exemplars
        assert _text(a["inputs"]) == _text(b["inputs"])


def test_max_input_length_needs_features_and_a_count():
    ds = tf.data.Dataset.from_tensors({"train": {"inputs": ["a"], "targets": ["b"]},
                                       "eval": {"inputs": "q", "targets": "t"}})
    with pytest.raises(ValueError, match="max_input_length=960.*output_features"):
        registration.fewshot_format(ds, None, max_input_length=960)
    with pytest.raises(ValueError, match="max_input_length=0 is no token count"):
        registration.fewshot_format(ds, {}, max_input_length=0)
