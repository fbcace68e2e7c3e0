"""The Hugging Face PyTorch peer of tools/bench.py: the same train step in PyTorch.

The same model shape, batch and optimizer as a flan_jax BenchConfig, built with transformers'
T5ForConditionalGeneration (config from flan_jax.convert.hf.hf_config_from_t5, dropout 0,
untied output embedding for T5 v1.1 shapes), transformers' Adafactor(lr, scale_parameter=False,
relative_step=False) and a random batch of ids in [2, vocab) without padding. One step =
zero_grad + forward + backward + optimizer.step, in float32 (bench-cpu's dtype).

torch and transformers are test-time extras (`.[test]`), never runtime dependencies of
flan_jax; tools/bench.py imports this module only when asked for a peer.

Denormal floats are flushed to zero, as XLA does on CPU: without it, PyTorch's eager step on
bench-cpu slowed from about 1.5 s to 9-11 s on the 2-core machine (2026-11-30), which would
measure the CPU's denormal microcode rather than the framework.
"""
from __future__ import annotations

import os
import time
from typing import Any

PEERS = ("hf_eager", "hf_compiled")


def configure_torch(threads: int | None = None):
    """Imports torch and sets what every PyTorch timing here shares: `threads` intra-op
    threads (default: every core) and denormals flushed to zero, as XLA does on CPU (see
    above). Returns the torch module. Raises ImportError where torch is not installed."""
    import torch
    torch.set_num_threads(threads or os.cpu_count() or 1)
    torch.set_flush_denormal(True)
    return torch


class HFTrainStep:
    """A warm PyTorch train step on the benchmark's shapes; step() runs and times one."""

    def __init__(self, config: Any, compiled: bool = False, threads: int | None = None):
        """config: a tools/bench.py BenchConfig (model, batch_size, lengths, lr, seed)."""
        import torch
        import transformers
        from transformers.optimization import Adafactor

        from flan_jax.convert import hf

        if config.model.dtype != "float32":
            raise ValueError("The HF peer runs float32 only (bench-cpu's dtype); drop --dtype "
                             "or --peer.")
        self.name = "hf_compiled" if compiled else "hf_eager"
        configure_torch(threads)
        torch.manual_seed(config.seed)
        fields = hf.hf_config_from_t5(config.model)
        fields.update(dropout_rate=0.0, use_cache=False)
        hf_config = transformers.T5Config(**fields)
        model = transformers.T5ForConditionalGeneration(hf_config).float().train()
        if not config.model.logits_via_embedding:
            assert model.lm_head.weight.data_ptr() != model.shared.weight.data_ptr(), \
                "transformers tied the output embedding; use transformers 4.57 (setup.py [test])"
        self.params = sum(p.numel() for p in model.parameters())
        self._optimizer = Adafactor(model.parameters(), lr=config.learning_rate,
                                    scale_parameter=False, relative_step=False,
                                    warmup_init=False)
        self._forward = torch.compile(model) if compiled else model
        generator = torch.Generator().manual_seed(config.seed)
        vocab = config.model.vocab_size
        self._input_ids = torch.randint(2, vocab, (config.batch_size, config.input_length),
                                        generator=generator)
        self._labels = torch.randint(2, vocab, (config.batch_size, config.target_length),
                                     generator=generator)
        self._attention_mask = torch.ones_like(self._input_ids)
        self.versions = {"torch": torch.__version__, "transformers": transformers.__version__}

    def step(self) -> tuple[float, float]:
        """One optimizer update; returns (seconds, loss)."""
        start = time.perf_counter()
        self._optimizer.zero_grad(set_to_none=True)
        out = self._forward(input_ids=self._input_ids, attention_mask=self._attention_mask,
                            labels=self._labels)
        out.loss.backward()
        self._optimizer.step()
        loss = float(out.loss.detach())
        return time.perf_counter() - start, loss
