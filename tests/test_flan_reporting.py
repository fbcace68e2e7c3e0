"""FLAN results as the paper reports them: the eval split and the per-cluster summary."""
import os
import sys

import gin
import pytest
import seqio

import tasks  # noqa: F401  (registers everything)
from flan_jax import evaluation, launch, summary
from tasks.flan import clusters, registration, reporting

REPO = launch.REPO_ROOT
FLAN_EVAL = "flan_inter_cluster_split_10_10templates_eval"  # entailment held out
MINI_EVAL = "mini_flan_heldout_entailment_scoring_eval"


@pytest.fixture
def clean_gin():
    gin.clear_config()
    yield
    gin.clear_config()


def _eval_config(*files: str, mixture: str) -> evaluation.EvalConfig:
    gin.add_config_file_search_path(REPO)
    gin.parse_config_files_and_bindings(
        [os.path.join(REPO, "gin_configs/models/t5_1_1/tiny.gin"), *files],
        [f"MIXTURE_OR_TASK_NAME = '{mixture}'", "TASK_FEATURE_LENGTHS = {'inputs': 8, 'targets': 8}",
         "CHECKPOINT_PATH = '/x'", "EVAL_OUTPUT_DIR = '/y'"], finalize_config=False)
    return gin.get_configurable(evaluation.EvalConfig)()


def test_flan_mixtures_report_on_flans_test_split():
    assert clusters.inter_cluster_split("entailment")[1] == clusters.CLUSTERS["entailment"]
    assert list(clusters.CLUSTERS).index("entailment") == 10
    assert reporting.eval_split(FLAN_EVAL) == "test"
    assert reporting.eval_split("rte_type_0_scoring_eval") == "test"
    assert reporting.eval_split(MINI_EVAL) == "validation"
    with pytest.raises(ValueError, match="Closest registered names"):
        reporting.eval_split("flan_inter_cluster_split_10_10templates_evl")


def test_eval_gin_picks_the_split_by_mixture(clean_gin):
    run = os.path.join(REPO, "gin_configs/runs/eval.gin")
    assert _eval_config(run, mixture=FLAN_EVAL).split == "test"
    gin.clear_config()
    assert _eval_config(run, mixture=MINI_EVAL).split == "validation"
    gin.clear_config()
    mini = os.path.join(REPO, "gin_configs/local/mini_cpu_eval.gin")
    assert _eval_config(mini, mixture=MINI_EVAL).split == "validation"


def test_every_flan_eval_task_has_a_cluster():
    mapped = {t for names in reporting.eval_clusters().values() for t in names}
    eval_mixtures = [m for m in seqio.MixtureRegistry.names()
                     if m.startswith("flan_") and m.endswith("_eval")]
    assert len(eval_mixtures) > 100
    for mixture in eval_mixtures:
        names = {t.name for t in seqio.get_mixture_or_task(mixture).tasks}
        assert names <= mapped, mixture
    paper = reporting.eval_clusters(paper_clusters=True)
    assert "rte_10templates" in paper["natural_language_inference"]
    assert "rte_10templates" in reporting.eval_clusters()["entailment"]


def test_flan_summary_uses_the_collection_clusters_and_skips_turned_around():
    per_template = {"rte_10templates": {i: {"accuracy": float(10 * i)} for i in range(10)},
                    "cb_10templates": {i: {"accuracy": 50.0} for i in range(10)},
                    "wmt16_translate_deen_10templates": {i: {"bleu": 20.0} for i in range(10)}}
    table = summary.summarize(per_template, reporting.eval_clusters(),
                              reporting.excluded_templates())
    rows = {r.task: r for r in table.tasks}
    assert rows["rte_10templates"].cluster == "entailment"
    # FLAN's RTE template 9 is its one turned-around template.
    assert rows["rte_10templates"].num_templates == 9
    assert rows["rte_10templates"].best == 80.0 and rows["rte_10templates"].average == 40.0
    # Both directions count; FLAN's templates 8 and 9 ask for a sentence / the language.
    assert rows["wmt16_translate_deen_10templates"].num_templates == 8
    assert rows["wmt16_translate_deen_10templates"].cluster == "translation"
    assert {c.cluster for c in table.clusters} == {"entailment", "translation"}


def test_excluded_templates_cover_variants_with_those_templates():
    excluded = reporting.excluded_templates()
    assert excluded["rte_10templates"] == (9,)
    assert excluded["rte_10templates_two_shot"] == (9,)
    assert excluded["rte_all_prompts"] == (9,)
    assert "rte_7templates" not in excluded and "rte_type_9" not in excluded
    assert excluded["wmt14_enfr_10templates"] == (8, 9)
    assert excluded["cnn_dailymail_10templates"] == (7, 8, 9)
    assert "winogrande_10templates" not in excluded  # options-less, but asking for the answer


def test_flan_eval_experiment_binds_the_clusters(clean_gin):
    path = os.path.join(REPO, "gin_configs/experiments/flan2021_eval.gin")
    config = _eval_config(path, mixture=FLAN_EVAL)
    assert config.split == "test"
    assert gin.query_parameter("%EVAL_CLUSTERS").selector.endswith("eval_clusters")


# --- The paper's protocol: every template on the whole split, one summary row per dataset ----

sys.path.insert(0, os.path.join(REPO, "tools"))
import flan_reference  # noqa: E402


def test_paper_eval_mixture_reads_every_template_of_the_held_out_datasets():
    flan = flan_reference.load()
    flan_names = set(flan["task_names"])
    for idx in (10, 3, 1):  # entailment; open-domain QA (both kinds); structure to text
        held_out = [t.removesuffix("_10templates") for t in
                    flan["mixtures"][f"flan_inter_cluster_split_{idx}_10templates_eval"]]
        members = {t.name for t in seqio.get_mixture_or_task(
            registration.paper_eval_mixture_name(idx)).tasks}
        want = set()
        for d in held_out:
            count = len(registration.REGISTERED[d].templates)
            # Classification datasets are those FLAN registers scoring tasks for.
            suffix = "_scoring_eval" if f"{d}_type_0_scoring_eval" in flan_names else ""
            want |= {f"{d}_type_{i}{suffix}" for i in range(count)}
        assert members == want, idx
        assert members <= flan_names  # FLAN's own task names, FLAN's per-template tasks
    assert registration.paper_eval_mixture_name(10) == "flan_inter_cluster_split_10_paper_eval"


def test_single_template_tasks_fold_into_one_row_per_dataset():
    template_tasks = reporting.template_tasks()
    assert template_tasks["rte_type_3_scoring_eval"] == ("rte_type_{i}_scoring_eval", 3)
    assert template_tasks["rte_type_3_two_shot"] == ("rte_type_{i}_two_shot", 3)
    assert template_tasks["mini_nli_type_9"] == ("mini_nli_type_{i}", 9)
    per_template = {f"rte_type_{i}_scoring_eval": {0: {"accuracy": float(10 * i)}}
                    for i in range(10)}
    per_template["squad_v1_10templates"] = {0: {"f1": 50.0}}
    merged = summary.merge_template_tasks(per_template, template_tasks)
    assert set(merged) == {"rte_type_{i}_scoring_eval", "squad_v1_10templates"}
    table = summary.summarize(merged, reporting.eval_clusters(), reporting.excluded_templates())
    rows = {r.task: r for r in table.tasks}
    row = rows["rte_type_{i}_scoring_eval"]
    # FLAN's RTE template 9 is turned around: left out, as in the round-robin row.
    assert (row.cluster, row.num_templates, row.average, row.best, row.best_template) == (
        "entailment", 9, 40.0, 80.0, 8)
    assert summary.merge_template_tasks(per_template, None) == per_template
    with pytest.raises(ValueError, match="only a single-template task can be merged"):
        summary.merge_template_tasks({"rte_type_3": {0: {}, 1: {}}}, template_tasks)
    with pytest.raises(ValueError, match="Two tasks give template 3"):
        summary.merge_template_tasks({"a": {0: {}}, "b": {0: {}}},
                                     {"a": ("r", 3), "b": ("r", 3)})


def test_flan_eval_experiment_binds_template_tasks(clean_gin):
    path = os.path.join(REPO, "gin_configs/experiments/flan2021_eval.gin")
    _eval_config(path, mixture="flan_inter_cluster_split_10_paper_eval")
    assert gin.query_parameter("%TEMPLATE_TASKS").selector.endswith("template_tasks")
