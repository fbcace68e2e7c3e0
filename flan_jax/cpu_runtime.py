"""How this process runs XLA on a CPU: computations inline, freed memory kept for the next call.

XLA:CPU allocates a computation's temporaries afresh on every call and frees them at the end
(bench-cpu's train step: one block of 1.37 GB). glibc serves a block that large with mmap and
returns it with munmap, so every step first-touches ~350,000 fresh 4 KB pages, each a page
fault the kernel answers with a zeroed page: 0.6-1.0 s of system time in a 1.6-2.6 s step on
the 2-core development machine (README "Benchmarks"). Two settings remove it:

1. `jax_cpu_enable_async_dispatch=False`: a single-device computation runs on the thread that
   calls it, so its temporaries come from glibc's main heap. A worker thread allocates from
   its own arena, which serves blocks over 64 MB (glibc's HEAP_MAX_SIZE) with mmap whatever
   the settings below.
2. `mallopt(M_MMAP_MAX, 0)` and `mallopt(M_TRIM_THRESHOLD, -1)`: the main heap serves large
   blocks itself and keeps freed memory, so the next call reuses pages already mapped.

The price: the process's resident memory stays at its peak (as a caching allocator's does),
and calling a single-device computation returns when it has finished, so the Python thread
does not run ahead of it (the input pipeline runs in tf.data's own threads either way).
Computations over several devices still run on worker threads and keep glibc's defaults.
FLAN_JAX_CPU_DEFAULTS=1 leaves both settings alone.
"""
from __future__ import annotations

import ctypes
import dataclasses
import os
import platform

import jax
# Not public API: whether JAX has created its clients (the dispatch flag is read then).
from jax._src import xla_bridge

# glibc's mallopt parameter numbers (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


@dataclasses.dataclass(frozen=True)
class CpuRuntime:
    """What configure() could set.

    Attributes:
      inline_dispatch: single-device CPU computations run on the calling thread.
      heap_reuse: glibc serves large blocks from its heap and keeps freed memory.
      notes: why a setting is off; empty when both are on.
    """

    inline_dispatch: bool
    heap_reuse: bool
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        """JSON-ready: the benchmarks record it beside their figures."""
        return {"inline_dispatch": self.inline_dispatch, "heap_reuse": self.heap_reuse,
                "notes": list(self.notes)}

    def describe(self) -> str:
        on = [name for name, flag in (("inline dispatch", self.inline_dispatch),
                                      ("heap reuse", self.heap_reuse)) if flag]
        text = f"CPU runtime: {', '.join(on) if on else 'defaults'}"
        return text + (f" ({'; '.join(self.notes)})" if self.notes else "")


def configure() -> CpuRuntime:
    """Applies the module docstring's settings where they can take effect; returns which did.

    Call it before the first JAX computation: the dispatch setting is read when JAX creates
    its CPU client. It initialises JAX's backends (to learn whether the CPU is the default
    one), so multi-host code calls jax.distributed.initialize first. Heap reuse applies only
    where the default backend is the CPU: on a TPU host, host memory keeps glibc's defaults.
    """
    if os.environ.get("FLAN_JAX_CPU_DEFAULTS") == "1":
        return CpuRuntime(False, False, ("FLAN_JAX_CPU_DEFAULTS=1",))
    notes = []
    if not xla_bridge.backends_are_initialized():
        jax.config.update("jax_cpu_enable_async_dispatch", False)
    inline = not jax.config.read("jax_cpu_enable_async_dispatch")
    if not inline:
        notes.append("JAX's CPU client already ran with async dispatch")
    heap = False
    if jax.default_backend() != "cpu":
        notes.append(f"default backend {jax.default_backend()}: host memory left as is")
    elif platform.libc_ver()[0] != "glibc":
        notes.append("not glibc: memory left to the C library's defaults")
    else:
        libc = ctypes.CDLL(None)
        heap = bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, -1))
        if not heap:
            notes.append("glibc's mallopt refused the settings")
    return CpuRuntime(inline, heap, tuple(notes))
