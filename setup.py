"""flan_jax: FLAN-style instruction tuning of T5 encoder-decoders in JAX.

Install with `make install` (what `make run` and `make test` do), not a bare `pip install .`:
t5==0.9.4 declares seqio-nightly, tfds-nightly, mesh-tensorflow and transformers, which clash
with the stable seqio / tensorflow-datasets pinned here. `import t5` only loads t5.data and
t5.evaluation, which work with stable seqio, so the Makefile installs t5 with --no-deps and this
file lists what those two subpackages need at runtime (babel ... nltk) instead of t5 itself.
"""
from setuptools import find_packages, setup

T5_VERSION = "0.9.4"  # installed with --no-deps by the Makefile; see the docstring

setup(
    name="flan_jax",
    version="0.1.0",
    description="FLAN-style instruction tuning of T5 encoder-decoders in JAX/Flax on TPU, GPU and CPU",
    python_requires=">=3.10",
    packages=find_packages(include=["flan_jax", "flan_jax.*", "tasks", "tasks.*"]),
    package_data={"": ["*.gin"]},
    install_requires=[
        "jax==0.10.2",
        "flax==0.12.8",
        "optax==0.2.8",
        "orbax-checkpoint==0.12.8",
        "seqio==0.0.20",
        "tensorflow==2.21.*",
        "tensorflow-text==2.21.1",
        "tensorflow-datasets==4.9.10",
        "sentencepiece==0.2.3",
        "gin-config==0.5.0",
        "tensorboard",
        "tqdm",
        # runtime needs of t5.data / t5.evaluation (t5 itself: see the module docstring)
        "babel",
        "editdistance",
        "rouge-score",
        "sacrebleu",
        "scikit-learn",
        "nltk",
    ],
    extras_require={
        "tpu": ["jax[tpu]==0.10.2"],
        "gpu": ["jax[cuda12]==0.10.2"],
        # Test-time references only (numerical parity with Hugging Face T5); never imported by
        # flan_jax at runtime. transformers 5.x cannot hold an untied T5 v1.1, 4.57 can.
        "test": ["pytest", "pytest-xdist==3.8.0", "torch==2.13.0", "transformers==4.57.6"],
        "hf": ["torch==2.13.0", "transformers==4.57.6", "safetensors"],
    },
)
