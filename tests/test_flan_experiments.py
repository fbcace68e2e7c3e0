"""gin_configs/experiments: FLAN 2021's recipe and one launch file per held-out cluster."""
import glob
import os

import gin
import pytest
import seqio

import tasks  # noqa: F401  (registers everything)
from flan_jax import data, launch, optim
from tasks.flan import clusters

REPO = launch.REPO_ROOT
EXPERIMENTS = os.path.join(REPO, "gin_configs", "experiments")


@pytest.fixture(autouse=True)
def clean_gin():
    gin.clear_config()
    yield
    gin.clear_config()


def _parse(path: str) -> None:
    gin.add_config_file_search_path(REPO)
    gin.parse_config_files_and_bindings(
        [os.path.join(REPO, "gin_configs/models/t5_1_1/tiny.gin"), path],
        ["MODEL_DIR = '/tmp/unused'"], finalize_config=False)


def test_paper_recipe():
    _parse(os.path.join(EXPERIMENTS, "flan2021_paper.gin"))
    gin.bind_parameter("%MIXTURE_OR_TASK_NAME", "flan_inter_cluster_split_0_10templates_train")
    dataset = gin.get_configurable(data.DatasetConfig)()
    assert dict(dataset.task_feature_lengths) == {"inputs": 1024, "targets": 256}
    assert dataset.pack and dataset.batch_size * 1024 == 8192  # 8,192-token batches
    optimizer = gin.get_configurable(optim.OptimizerConfig)()
    assert (optimizer.learning_rate, optimizer.schedule) == (3e-5, "constant")  # Adafactor
    assert gin.query_parameter("%TRAIN_STEPS") == 30000


@pytest.mark.parametrize("idx, cluster", list(enumerate(clusters.CLUSTERS)))
def test_one_held_out_file_per_cluster(idx, cluster):
    _parse(os.path.join(EXPERIMENTS, f"flan2021_heldout_{cluster}.gin"))
    name = gin.query_parameter("%MIXTURE_OR_TASK_NAME")
    assert name == f"flan_inter_cluster_split_{idx}_10templates_train"
    train = {t.name for t in seqio.get_mixture_or_task(name).tasks}
    held_out = {f"{d}_10templates" for d in clusters.CLUSTERS[cluster]}
    assert train and not train & held_out
    assert gin.query_parameter("%TRAIN_STEPS") == 30000


def test_no_stray_experiment_files():
    expected = {"flan2021_paper.gin", "flan2021_eval.gin", "flan2021_ablation_no_template.gin",
                "flan2021_ablation_dataset_name.gin", "flan_t5_finetune.gin",
                *(f"flan2021_heldout_{c}.gin" for c in clusters.CLUSTERS)}
    assert {os.path.basename(p) for p in glob.glob(os.path.join(EXPERIMENTS, "*.gin"))} == expected


@pytest.mark.parametrize("ablation", ["no_template", "dataset_name"])
def test_instruction_ablation_files(ablation):
    _parse(os.path.join(EXPERIMENTS, f"flan2021_ablation_{ablation}.gin"))
    name = gin.query_parameter("%MIXTURE_OR_TASK_NAME")
    assert name == f"flan_inter_cluster_split_10_{ablation}_train"
    assert clusters.CLUSTERS and list(clusters.CLUSTERS)[10] == "entailment"
    members = {t.name for t in seqio.get_mixture_or_task(name).tasks}
    # The same datasets as the instruction run of that split, through the ablated templates.
    instructed = {t.name.replace("_10templates", f"_{ablation}") for t in
                  seqio.get_mixture_or_task("flan_inter_cluster_split_10_10templates_train").tasks}
    assert members and members == instructed
    assert gin.query_parameter("%TRAIN_STEPS") == 30000


def test_flan_t5_finetune_is_t5xs_public_checkpoint_recipe():
    # Facts of t5x/configs/runs/finetune.gin and t5_1_1/examples/base_wmt_finetune.gin.
    _parse(os.path.join(EXPERIMENTS, "flan_t5_finetune.gin"))
    gin.bind_parameter("%MIXTURE_OR_TASK_NAME", "flan_inter_cluster_split_10_10templates_train")
    gin.bind_parameter("%TASK_FEATURE_LENGTHS", {"inputs": 512, "targets": 128})
    gin.bind_parameter("%TRAIN_STEPS", 10)
    assert str(gin.query_parameter("%INITIAL_CHECKPOINT_PATH")) == "%gin.REQUIRED"
    assert gin.query_parameter("%DROPOUT_RATE") == 0.1
    assert gin.query_parameter("%LOSS_NORMALIZING_FACTOR") == 2048 * 114
    dataset = gin.get_configurable(data.DatasetConfig)()
    assert dataset.pack and dataset.batch_size == 128
    optimizer = gin.get_configurable(optim.OptimizerConfig)()
    assert (optimizer.learning_rate, optimizer.schedule) == (1e-3, "constant")
