"""make run's evaluation table: every mini-FLAN cluster, each row marked seen or held out."""
import csv
import io

import pytest
import seqio

import tasks  # noqa: F401  (registers mini-FLAN and its scoring variants)
from flan_jax import summary
from tasks import mini
from tasks.flan import registration


def test_all_clusters_eval_mixture_scores_classification_and_generates_the_rest():
    mixture = seqio.get_mixture_or_task(mini.ALL_SCORING_EVAL_MIXTURE)
    names = sorted(t.name for t in mixture.tasks)
    # The factory's names: rank classification with the 10 templates round robin for the
    # datasets with options, the `_10templates` task (generation) for the others.
    expected = sorted(f"{d}_10templates_scoring_eval" if mini.dataset_options(d)
                      else f"{d}_10templates" for d in mini.DATASET_NAMES)
    assert names == expected and len(names) == 12
    scoring = [t for t in mixture.tasks if t.name.endswith("_scoring_eval")]
    assert len(scoring) == 4 and all(
        t.metric_fns == [registration.t5_metrics.rank_classification] for t in scoring)
    # Every task of every cluster, so a held-out run sees its training clusters too.
    clusters = mini.eval_clusters()
    assert all(any(n in clusters[c] for c in mini.CLUSTERS) for n in names)


def test_summary_marks_seen_and_held_out_rows():
    per_template = {
        "nli": {0: {"accuracy": 40.0}, 1: {"accuracy": 30.0}},
        "add": {0: {"accuracy": 90.0}, 1: {"accuracy": 70.0}},
        "sub": {0: {"accuracy": 60.0}},
    }
    clusters = {"arithmetic": ["add", "sub"], "entailment": ["nli"]}
    s = summary.summarize(per_template, clusters, held_out=["entailment"])
    assert {r.task: r.held_out for r in s.tasks} == {"add": False, "sub": False, "nli": True}
    assert {c.cluster: (c.held_out, c.average) for c in s.clusters} == {
        "arithmetic": (False, 70.0), "entailment": (True, 35.0)}
    md = summary.to_markdown(s)
    assert "| cluster | tasks | average template | best template | training |" in md
    assert "| arithmetic | 2 | 70.00 | 75.00 | seen |" in md
    assert "| entailment | 1 | 35.00 | 40.00 | held out |" in md
    assert "| entailment | nli | accuracy | 35.00 | 40.00 (0) | 2 | held out |" in md
    rows = list(csv.DictReader(io.StringIO(summary.to_csv(s))))
    assert {(r["cluster"], r["task"]): r["training"] for r in rows}[
        ("entailment", "ALL")] == "held out"
    # Without held_out the tables keep their columns (no "training" column).
    plain = summary.to_markdown(summary.summarize(per_template, clusters))
    assert "training" not in plain and "| arithmetic | 2 | 70.00 | 75.00 |\n" in plain


def test_held_out_clusters_must_be_a_list_of_known_clusters():
    clusters = {"arithmetic": ["add"], "entailment": ["nli"]}
    summary.check_held_out(["entailment"], clusters)
    summary.check_held_out(None, None)
    with pytest.raises(ValueError, match=r"HELDOUT_CLUSTERS='entailment' must be a list"):
        summary.check_held_out("entailment", clusters)
    with pytest.raises(ValueError, match=r"names \['qa'\], which EVAL_CLUSTERS does not "
                                         r"define; its clusters are \['arithmetic', "):
        summary.check_held_out(["qa", "entailment"], clusters)
