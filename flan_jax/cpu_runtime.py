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

A caller that knows how many CPU devices it will use passes `cpu_devices`, and JAX creates
that many instead of what XLA_FLAGS' --xla_force_host_platform_device_count says: XLA:CPU
gives its intra-op thread pool max(cores, CPU devices) threads, and one device's step on the
8 fake devices the tests and `make` export ran on 8 threads over 2 cores, 1.25-1.37 s per
bench-cpu step against 1.13-1.19 s on 2 (README "Benchmarks"). The benchmarks pass it.
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
      cpu_devices: this process's CPU devices (XLA:CPU runs max(cores, this) intra-op
        threads).
      notes: why a setting is off; empty when both are on and cpu_devices is as asked.
    """

    inline_dispatch: bool
    heap_reuse: bool
    cpu_devices: int
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        """JSON-ready: the benchmarks record it beside their figures."""
        return {"inline_dispatch": self.inline_dispatch, "heap_reuse": self.heap_reuse,
                "cpu_devices": self.cpu_devices, "notes": list(self.notes)}

    def describe(self) -> str:
        on = [name for name, flag in (("inline dispatch", self.inline_dispatch),
                                      ("heap reuse", self.heap_reuse)) if flag]
        text = (f"CPU runtime: {', '.join(on) if on else 'defaults'}; {self.cpu_devices} CPU "
                f"device{'s' if self.cpu_devices != 1 else ''}")
        return text + (f" ({'; '.join(self.notes)})" if self.notes else "")


def configure(cpu_devices: int | None = None) -> CpuRuntime:
    """Applies the module docstring's settings where they can take effect; returns which did.

    Call it before the first JAX computation: the dispatch setting and the device count are
    read when JAX creates its CPU client. It initialises JAX's backends (to learn whether the
    CPU is the default one), so multi-host code calls jax.distributed.initialize first. Heap
    reuse applies only where the default backend is the CPU: on a TPU host, host memory keeps
    glibc's defaults.

    Args:
      cpu_devices: how many CPU devices JAX creates (jax_num_cpu_devices, which overrides
        XLA_FLAGS); None leaves the count to XLA_FLAGS. Applied under FLAN_JAX_CPU_DEFAULTS=1
        too: it is the caller's choice, not one of the settings that variable turns off.
    """
    if cpu_devices is not None and (isinstance(cpu_devices, bool)
                                    or not isinstance(cpu_devices, int) or cpu_devices < 1):
        raise ValueError(f"cpu_devices={cpu_devices!r}: give a positive device count, or None "
                         "to keep XLA_FLAGS' --xla_force_host_platform_device_count.")
    opt_out = os.environ.get("FLAN_JAX_CPU_DEFAULTS") == "1"
    notes = []
    if not xla_bridge.backends_are_initialized():
        if cpu_devices is not None:
            jax.config.update("jax_num_cpu_devices", cpu_devices)
        if not opt_out:
            jax.config.update("jax_cpu_enable_async_dispatch", False)
    devices = len(jax.local_devices(backend="cpu"))
    if cpu_devices is not None and devices != cpu_devices:
        notes.append(f"JAX's CPU client already had {devices} devices, not {cpu_devices}")
    if opt_out:
        return CpuRuntime(False, False, devices, tuple(notes) + ("FLAN_JAX_CPU_DEFAULTS=1",))
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
    return CpuRuntime(inline, heap, devices, tuple(notes))
