# Two commands a fresh clone needs: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
T5_VERSION := $(shell sed -n 's/^T5_VERSION = "\(.*\)".*/\1/p' setup.py)
MODEL_DIR ?= runs/mini-flan
# Eight fake CPU devices: the tests exercise a real ('data', 'model') mesh. `make run` sets its
# own count, and the benchmarks create exactly the devices they time (flan_jax.cpu_runtime:
# XLA:CPU runs max(cores, devices) intra-op threads, so 8 fake devices oversubscribe 2 cores).
export XLA_FLAGS ?= --xla_force_host_platform_device_count=8
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install run test bench bench-decode bench-input bench-matmul resume-cost install-tpu test-tpu-compile clean

install: $(VENV)/.installed

# The stamp depends on setup.py so a changed dependency list re-installs.
$(VENV)/.installed: setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	$(PY) -m pip install -q --no-deps "t5==$(T5_VERSION)"
	touch $@

# Instruction-tune on mini-FLAN with the entailment cluster held out, then evaluate every
# cluster (rank classification for classification tasks) and print one per-cluster table,
# each row marked seen (trained on) or held out.
# Two fake devices, data parallel. For this tiny model 1 device measured 0.26 s/step against
# 0.28 on 2 (200 steps each, one after the other, not interleaved), within the machine's
# noise, so the published run keeps 2 (README "What `make run` prints"). tools/bench.py
# defaults to 1 for bench-cpu, where 1 device was faster interleaved. The tests keep 8
# (tests/conftest.py).
RUN_DEVICES ?= 2
run: install
	XLA_FLAGS=--xla_force_host_platform_device_count=$(RUN_DEVICES) $(PY) -m flan_jax.train \
	  --gin_file=gin_configs/local/mini_cpu.gin \
	  --gin.MODEL_DIR="'$(MODEL_DIR)'"
	XLA_FLAGS=--xla_force_host_platform_device_count=$(RUN_DEVICES) $(PY) -m flan_jax.eval \
	  --gin_file=gin_configs/local/mini_cpu_eval.gin \
	  --gin.CHECKPOINT_PATH="'$(MODEL_DIR)'" \
	  --gin.EVAL_OUTPUT_DIR="'$(MODEL_DIR)/eval'"

# Two pytest workers (pytest-xdist), each test file on one worker (module fixtures built once):
# much of the suite is single-threaded XLA compilation and TensorFlow set-up, which two
# processes overlap on 2 cores. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
test: install
	$(PY) -m pytest -q -rs --durations=15 -n $(TEST_WORKERS) --dist loadfile tests

# Training throughput on bench-cpu against HF PyTorch (eager, compiled), rounds interleaved; one JSON line.
bench: install
	$(PY) tools/bench.py --peer both --rounds 3 --measure-peak

# Decoding (greedy, beam 4) and scoring throughput, with HF PyTorch in the same run; scoring
# also in GFLOP/s against the 2048^2 product peaks of XLA and PyTorch measured after it.
bench-decode: install
	$(PY) tools/bench_decode.py --measure-peak

# Every dot of the bench-cpu step timed alone in XLA and in PyTorch (MKL), rewrites of the slow
# ones, the same for bench-decode's scoring call and greedy generation, and the Adafactor
# update against optax's (tools/bench_matmul.py).
bench-matmul: install
	$(PY) tools/bench_matmul.py --variants
	$(PY) tools/bench_matmul.py --program score
	$(PY) tools/bench_matmul.py --program greedy
	$(PY) tools/bench_matmul.py --optimizer --repeats 15

# The training input pipeline (mini-FLAN templating, 32k SentencePiece tokenization, packing)
# in batches/s, against what a bench-cpu train step consumes; the first run trains the
# vocabulary offline (runs/bench_input/spm32k.model, a few minutes).
bench-input: install
	$(PY) tools/bench_input.py

# What resuming the input pipeline costs at steps 100, 10,000 and 100,000 of mini-FLAN: saved
# tf.data state vs replaying the data (pipeline only, no model). Well over an hour on 2 cores:
# it reads 100,000 batches, then replays them (the replay alone took 38 min at load 11-14).
resume-cost: install
	$(PY) tools/resume_cost.py --steps 100 10000 100000

# libtpu (the [tpu] extra) lets flan_jax.aot compile for TPU slices on this CPU; no TPU needed.
install-tpu: install
	$(PY) -m pip install -q -e ".[tpu]"

# The real TPU compiler on a v4-8 topology, tiny model (tests marked tpu_compile); ulimit as
# flan_jax/aot.py advises.
test-tpu-compile: install-tpu
	ulimit -s unlimited && $(PY) -m pytest -q -rs -m tpu_compile tests/test_aot.py

clean:
	rm -rf $(VENV) runs
