"""metrics.jsonl: one record per logged step, kept across resumes, locally and on object stores."""
import pytest

from flan_jax import metrics_log

METRICS = {"loss": 1.5, "accuracy": 0.25, "learning_rate": 1e-3, "tokens_per_s": 100.0,
           "seconds_per_step": 0.5}


@pytest.mark.parametrize("root", ["local", "ram://flan_jax_metrics_test"])
def test_records_survive_a_resume(tmp_path, root):
    model_dir = str(tmp_path / "run") if root == "local" else root + "/run"
    first = metrics_log.MetricsLog(model_dir, total_steps=4, initial_step=0, progress_bar=False)
    first.write(1, METRICS)
    first.write(2, dict(METRICS, loss=1.0))
    first.close()
    resumed = metrics_log.MetricsLog(model_dir, total_steps=4, initial_step=2, progress_bar=False)
    resumed.write(3, dict(METRICS, loss=0.5))
    resumed.close()
    records = metrics_log.read_metrics(model_dir)
    assert [(r["step"], r["loss"]) for r in records] == [(1, 1.5), (2, 1.0), (3, 0.5)]
    assert set(records[0]) == {"step", *METRICS}
