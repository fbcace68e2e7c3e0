"""Hugging Face T5 <-> flan_jax checkpoints, and a numerical parity check against transformers.

from-hf reads a Hugging Face T5 directory (config.json plus model.safetensors, sharded
model-0000k-of-0000n.safetensors with model.safetensors.index.json, or pytorch_model.bin
loaded weights-only) one tensor at a time, and writes a flan_jax initial checkpoint
(flan_jax.convert.checkpoint_io). to-hf writes config.json and model.safetensors back,
streaming one tensor at a time. Names and transposes: flan_jax.convert.naming.

Peak host memory. from-hf: one float32 copy of the model (host jax.Arrays, which Orbax
saves without staging another copy) plus a tensor or two in flight; the source files are
memory-mapped, so their pages also show in RSS while read but are reclaimable page cache.
to-hf: one float32 copy (the restored params) plus one transposed tensor being written.
Measured on a T5 v1.1 Small shape (77M params, 294 MiB in float32, 4 shards): max RSS 1.16 GB
for from-hf and 0.74 GB for to-hf, of which about 0.2 GB is imports. For Flan-T5 XXL (11.3B
params) plan on about 45 GB of RAM plus page cache.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import struct
from typing import Any, Mapping, Sequence

import numpy as np

from flan_jax import checkpointing, peft
from flan_jax.convert import checkpoint_io, naming
from flan_jax.models import t5

CONFIG_FILE = "config.json"
SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
TORCH_FILE = "pytorch_model.bin"
TORCH_INDEX = "pytorch_model.bin.index.json"
HF_INSTALL_HINT = 'pip install -e ".[hf]"'

# flan_jax's RMSNorm epsilon (T5's); a checkpoint trained with another would drift.
_LAYER_NORM_EPSILON = 1e-6


# ----------------------------------------------------------------------------------------
# Configs
# ----------------------------------------------------------------------------------------

def t5_config_from_hf(hf_config: Mapping[str, Any], where: str) -> t5.T5Config:
    """A Hugging Face T5 config.json (as a dict) -> T5Config (float32, no dropout)."""
    model_type = hf_config.get("model_type")
    if model_type not in ("t5", "mt5"):
        raise ValueError(f"{where}: model_type={model_type!r}; only T5 encoder-decoders "
                         "(model_type 't5' or 'mt5') can be converted.")
    if hf_config.get("is_encoder_decoder") is False:
        raise ValueError(f"{where}: is_encoder_decoder=false; flan_jax's T5 is an "
                         "encoder-decoder.")
    epsilon = hf_config.get("layer_norm_epsilon", _LAYER_NORM_EPSILON)
    if not math.isclose(epsilon, _LAYER_NORM_EPSILON, rel_tol=1e-3):
        raise ValueError(f"{where}: layer_norm_epsilon={epsilon} is not supported; flan_jax's "
                         f"T5 uses {_LAYER_NORM_EPSILON}.")
    missing = [k for k in ("vocab_size", "d_model", "num_heads", "d_kv", "d_ff", "num_layers")
               if k not in hf_config]
    if missing:
        raise ValueError(f"{where} lacks {missing}; is it a T5 config.json?")
    num_layers = hf_config["num_layers"]
    return t5.T5Config(
        vocab_size=hf_config["vocab_size"],
        emb_dim=hf_config["d_model"],
        num_heads=hf_config["num_heads"],
        num_encoder_layers=num_layers,
        num_decoder_layers=hf_config.get("num_decoder_layers") or num_layers,
        head_dim=hf_config["d_kv"],
        mlp_dim=hf_config["d_ff"],
        mlp_activations=naming.activations_from_hf(hf_config.get("feed_forward_proj", "relu"),
                                                   where),
        # HF's T5Config defaults to tied embeddings (T5 v1.0); v1.1 files say false.
        logits_via_embedding=bool(hf_config.get("tie_word_embeddings", True)),
        relative_attention_num_buckets=hf_config.get("relative_attention_num_buckets", 32),
        relative_attention_max_distance=hf_config.get("relative_attention_max_distance", 128),
        dropout_rate=0.0, dtype="float32")


def hf_config_from_t5(config: t5.T5Config) -> dict[str, Any]:
    """T5Config -> a config.json for transformers' T5ForConditionalGeneration."""
    return {
        "architectures": ["T5ForConditionalGeneration"],
        "model_type": "t5",
        "is_encoder_decoder": True,
        "vocab_size": config.vocab_size,
        "d_model": config.emb_dim,
        "num_heads": config.num_heads,
        "d_kv": config.head_dim,
        "d_ff": config.mlp_dim,
        "num_layers": config.num_encoder_layers,
        "num_decoder_layers": config.num_decoder_layers,
        "feed_forward_proj": naming.activations_to_hf(config.mlp_activations),
        "tie_word_embeddings": config.logits_via_embedding,
        "relative_attention_num_buckets": config.relative_attention_num_buckets,
        "relative_attention_max_distance": config.relative_attention_max_distance,
        "layer_norm_epsilon": _LAYER_NORM_EPSILON,
        "dropout_rate": 0.1,
        "initializer_factor": 1.0,
        "pad_token_id": 0,
        "eos_token_id": 1,
        "decoder_start_token_id": 0,
        "use_cache": True,
        "torch_dtype": "float32",
    }


# ----------------------------------------------------------------------------------------
# Reading a Hugging Face directory, one tensor at a time
# ----------------------------------------------------------------------------------------

class HfCheckpoint:
    """The tensors of a Hugging Face T5 directory, opened lazily.

    Use as a context manager; `shape(name)` reads only headers, `get(name)` one tensor.
    """

    def __init__(self, hf_dir: str):
        self.directory = os.path.abspath(hf_dir)
        config_path = os.path.join(self.directory, CONFIG_FILE)
        if not os.path.isdir(self.directory):
            raise FileNotFoundError(f"{self.directory} is not a directory.")
        if not os.path.isfile(config_path):
            raise FileNotFoundError(f"{self.directory} is not a Hugging Face checkpoint "
                                    f"directory: it has no {CONFIG_FILE}.")
        with open(config_path) as f:
            try:
                self.config_json = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"{config_path} is not valid JSON: {e}") from None
        self.config_path = config_path
        self.config = t5_config_from_hf(self.config_json, config_path)
        self._open: dict[str, Any] = {}  # file path -> safe_open handle / _TorchFile
        self._files = self._weight_files()  # tensor name -> file path

    def _weight_files(self) -> dict[str, str]:
        d = self.directory
        if os.path.isfile(os.path.join(d, SAFETENSORS_FILE)):
            return self._names_in(os.path.join(d, SAFETENSORS_FILE))
        for index_name in (SAFETENSORS_INDEX, TORCH_INDEX):
            index = os.path.join(d, index_name)
            if os.path.isfile(index):
                with open(index) as f:
                    weight_map = json.load(f).get("weight_map", {})
                shards = sorted(set(weight_map.values()))
                absent = [s for s in shards if not os.path.isfile(os.path.join(d, s))]
                if absent:
                    raise FileNotFoundError(
                        f"{index} names shard(s) that are missing: {absent} (e.g. tensor "
                        f"{next(k for k, v in weight_map.items() if v == absent[0])!r}). "
                        "Download every shard.")
                return {name: os.path.join(d, shard) for name, shard in weight_map.items()}
        if os.path.isfile(os.path.join(d, TORCH_FILE)):
            return self._names_in(os.path.join(d, TORCH_FILE))
        raise FileNotFoundError(
            f"{d} has {CONFIG_FILE} but no weights: expected {SAFETENSORS_FILE}, "
            f"{SAFETENSORS_INDEX} with its shards, or {TORCH_FILE}.")

    def _names_in(self, path: str) -> dict[str, str]:
        return {name: path for name in self._handle(path).keys()}

    def _handle(self, path: str):
        if path not in self._open:
            if path.endswith(".safetensors"):
                from safetensors import safe_open
                try:
                    self._open[path] = safe_open(path, framework="numpy")
                except Exception as e:  # safetensors raises its own error types
                    raise ValueError(f"{path} is not a readable safetensors file: {e}") from None
            else:
                self._open[path] = _TorchFile(path)
        return self._open[path]

    def __enter__(self) -> "HfCheckpoint":
        return self

    def __exit__(self, *exc) -> None:
        self._open.clear()  # safe_open handles close when dropped

    def names(self) -> list[str]:
        return sorted(self._files)

    def file_of(self, name: str) -> str:
        return self._files[name]

    def shape(self, name: str) -> tuple[int, ...]:
        handle = self._handle(self._files[name])
        if isinstance(handle, _TorchFile):
            return handle.shape(name)
        return tuple(handle.get_slice(name).get_shape())

    def get(self, name: str) -> np.ndarray:
        path = self._files[name]
        handle = self._handle(path)
        try:
            return handle.get_tensor(name)
        except KeyError:
            raise KeyError(f"{path} has no tensor {name!r} although its index lists it.") \
                from None


class _TorchFile:
    """A pytorch_model.bin opened with torch.load(weights_only=True): never unpickles code."""

    def __init__(self, path: str):
        try:
            import torch
        except ImportError:
            raise ImportError(f"{path} is a PyTorch pickle; reading it needs torch "
                              f"({HF_INSTALL_HINT}), or convert it to safetensors.") from None
        self._torch = torch
        self._state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)

    def keys(self):
        return self._state.keys()

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._state[name].shape)

    def get_tensor(self, name: str) -> np.ndarray:
        # numpy has no bfloat16: widen in torch first.
        return self._state[name].to(self._torch.float32).numpy()


# ----------------------------------------------------------------------------------------
# from-hf
# ----------------------------------------------------------------------------------------

def read_hf_params(checkpoint: HfCheckpoint) -> dict[str, Any]:
    """All parameters of an open HF checkpoint as {flan_jax path: float32 host jax.Array}.

    Every tensor is checked against config.json before any is read; errors name the file
    and the tensor.
    """
    config = checkpoint.config
    mapping = naming.hf_names(config)
    expected = naming.param_shapes(config)
    available = set(checkpoint.names())
    where = checkpoint.directory
    missing = [t.name for t in mapping.values() if t.name not in available]
    if missing:
        raise ValueError(f"{where} lacks tensor(s) the config {checkpoint.config_path} "
                         f"requires: {missing[:6]}{' ...' if len(missing) > 6 else ''}.")
    known = {t.name for t in mapping.values()} | set(naming.HF_TIED_ALIASES)
    if config.logits_via_embedding:
        known.add("lm_head.weight")  # older tied checkpoints store the alias too
    unexpected = sorted(available - known)
    if unexpected:
        raise ValueError(
            f"{checkpoint.file_of(unexpected[0])} holds tensor(s) that a T5 with config "
            f"{checkpoint.config_path} does not have: {unexpected[:6]}. Check "
            "feed_forward_proj / tie_word_embeddings / num_layers in config.json.")
    for ours, hf in mapping.items():
        want = expected[ours][::-1] if hf.transpose else expected[ours]
        got = checkpoint.shape(hf.name)
        if tuple(got) != tuple(want):
            raise ValueError(f"{checkpoint.file_of(hf.name)}: tensor {hf.name!r} has shape "
                             f"{tuple(got)} but {checkpoint.config_path} implies {tuple(want)} "
                             f"(flan_jax {ours}).")
    params = {}
    for ours, hf in mapping.items():
        array = checkpoint.get(hf.name)
        params[ours] = checkpoint_io.host_array(array.T if hf.transpose else array)
        del array
    return params


def from_hf(hf_dir: str, out_dir: str) -> t5.T5Config:
    """Converts a Hugging Face T5 directory into a flan_jax initial checkpoint in out_dir."""
    with HfCheckpoint(hf_dir) as checkpoint:
        config = checkpoint.config
        with checkpoint_io.atomic_output_dir(out_dir) as tmp:
            params = checkpointing.unflatten(read_hf_params(checkpoint))
            vocabulary = os.path.join(checkpoint.directory, checkpoint_io.VOCABULARY_FILE)
            checkpoint_io.write_converted(
                tmp, out_dir, params, config, source=f"Hugging Face {checkpoint.directory}",
                vocabulary_file=vocabulary if os.path.isfile(vocabulary) else None)
    return config


# ----------------------------------------------------------------------------------------
# to-hf
# ----------------------------------------------------------------------------------------

def to_hf(checkpoint: str, out_dir: str, gin_files: Sequence[str] = ()) -> t5.T5Config:
    """Writes config.json + model.safetensors (+ spiece.model) loadable by transformers.

    The model config comes from `gin_files` when given (checked against the params);
    otherwise from the params' shapes with T5's conventions (naming.infer_config).
    A LoRA run's checkpoint is completed with its frozen base and the adapters are merged
    into the kernels, so the export is a plain T5.
    """
    with checkpoint_io.atomic_output_dir(out_dir) as tmp:
        params, where = checkpointing.load_params(checkpoint)
        params = _merge_peft_run(params, where)
        shapes = {name: a.shape for name, a in params.items()}
        config = (peft.plain_config(checkpoint_io.config_from_gin(gin_files)) if gin_files
                  else naming.infer_config(shapes, where))
        # load_params gives the unscanned layout whatever the run used.
        config = dataclasses.replace(config, scan_layers=False)
        naming.check_shapes(config, shapes, where)
        with open(os.path.join(tmp, CONFIG_FILE), "w") as f:
            json.dump(hf_config_from_t5(config), f, indent=2)
        # Transposes are views: each tensor is laid out only when written.
        write_safetensors(os.path.join(tmp, SAFETENSORS_FILE), {
            hf.name: params[ours].T if hf.transpose else params[ours]
            for ours, hf in naming.hf_names(config).items()})
        vocabulary = os.path.join(os.path.abspath(checkpoint), checkpoint_io.VOCABULARY_FILE)
        if os.path.isfile(vocabulary):
            shutil.copyfile(vocabulary, os.path.join(tmp, checkpoint_io.VOCABULARY_FILE))
    return config


def _merge_peft_run(params: dict[str, np.ndarray], where: str) -> dict[str, np.ndarray]:
    """{name: array} of checkpoint step dir `where`; for a LoRA run (its MODEL_DIR records a
    frozen base, flan_jax/peft.py) the base's params with the adapters folded in."""
    record = peft.read_run_record(os.path.dirname(os.path.dirname(where)))
    if record is None:
        return params
    peft.check_exportable(record["prompt_length"])
    base, _ = checkpointing.load_params(record["base_checkpoint"])
    folded = peft.fold_lora(checkpointing.unflatten({**base, **params}), record["lora_scale"])
    return checkpointing.flatten(folded)


def write_safetensors(path: str, tensors: Mapping[str, np.ndarray]) -> None:
    """Writes float32 tensors into one safetensors file, one contiguous copy at a time.

    The format (huggingface/safetensors): little-endian u64 header size, a JSON header of
    {name: {dtype, shape, data_offsets}} padded with spaces to 8 bytes, then the raw data.
    `tensors` may hold non-contiguous views (transposes); they are laid out one by one.
    """
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    names = sorted(tensors)
    for name in names:
        size = 4 * math.prod(tensors[name].shape)
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + size]}
        offset += size
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for name in names:
            f.write(np.ascontiguousarray(tensors[name], dtype="<f4").data)


# ----------------------------------------------------------------------------------------
# check-hf
# ----------------------------------------------------------------------------------------

def check_hf(hf_dir: str, checkpoint: str | None = None, *, batch_size: int = 2,
             input_length: int = 12, target_length: int = 7, seed: int = 0) -> dict[str, Any]:
    """Runs one random batch through transformers (fp32) and flan_jax; compares logits.

    The encoder input's last row is padded, to exercise the masks. Our side takes its params
    from `checkpoint` (a converted OUT_DIR or any flan_jax checkpoint), or, when None,
    converts hf_dir in memory.

    Returns {"max_abs_logits_diff": float, ...} (logits [batch, target_length, vocab]).
    """
    try:
        import torch
        import transformers
    except ImportError:
        raise ImportError("check-hf runs the model in transformers as the reference and needs "
                          f"torch and transformers: {HF_INSTALL_HINT}") from None
    import jax
    import jax.numpy as jnp

    with HfCheckpoint(hf_dir) as hf:
        config = hf.config
        params = (read_hf_params(hf) if checkpoint is None
                  else checkpointing.load_params(checkpoint)[0])
    if checkpoint is not None:
        naming.check_shapes(config, {k: v.shape for k, v in params.items()}, checkpoint)

    rng = np.random.default_rng(seed)
    # Ids >= 2 keep padding (0) and EOS (1) out of the random text.
    inputs = rng.integers(2, config.vocab_size, (batch_size, input_length), dtype=np.int32)
    inputs[-1, input_length // 2:] = 0
    targets = rng.integers(2, config.vocab_size, (batch_size, target_length), dtype=np.int32)
    decoder_inputs = np.concatenate([np.zeros_like(targets[:, :1]), targets[:, :-1]], axis=1)

    model = transformers.T5ForConditionalGeneration.from_pretrained(
        hf.directory, dtype=torch.float32).eval()
    with torch.no_grad():
        theirs = model(input_ids=torch.from_numpy(inputs).long(),
                       attention_mask=torch.from_numpy(inputs > 0).long(),
                       decoder_input_ids=torch.from_numpy(decoder_inputs).long()
                       ).logits.numpy()

    ours_model = t5.Transformer(dataclasses.replace(config, dtype="float32", dropout_rate=0.0))
    ours = np.asarray(jax.jit(lambda p, a, b, c: ours_model.apply(
        {"params": p}, a, b, c, enable_dropout=False))(
            checkpointing.unflatten({k: jnp.asarray(v) for k, v in params.items()}),
            inputs, decoder_inputs, targets))
    return {"max_abs_logits_diff": float(np.max(np.abs(ours - theirs))),
            "max_abs_logits": float(np.max(np.abs(theirs))),
            "logits_shape": list(theirs.shape), "hf_dir": hf.directory,
            "checkpoint": checkpoint}
