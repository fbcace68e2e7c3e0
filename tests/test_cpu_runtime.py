"""flan_jax.cpu_runtime: a step's temporaries are reused from call to call, not faulted in anew.

Each check runs in a fresh interpreter: the dispatch setting is read when JAX creates its CPU
client, and mallopt changes the whole process.
"""
import json
import os
import subprocess
import sys

import jax
import pytest

from flan_jax import cpu_runtime

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# One single-device computation whose temporaries ([4096, 4096] float32 arrays) exceed
# glibc's 64 MB arena heaps; prints its temporary bytes and the median page faults of calls
# 3-10 (configured, glibc's heap settles after a few calls; now and then a call still finds
# its block split by an output buffer and maps fresh pages once).
_PROBE = r"""
import json, os, resource, sys
import jax, jax.numpy as jnp
from flan_jax import cpu_runtime
if sys.argv[1] == "after-first-computation":
    jax.numpy.zeros(1).block_until_ready()
if sys.argv[1] == "tpu-default":  # as on a TPU host, where the CPU is a secondary backend
    jax.default_backend = lambda: "tpu"
devices = int(sys.argv[1].split("devices-")[1]) if "devices-" in sys.argv[1] else None
runtime = cpu_runtime.configure(devices) if sys.argv[1] != "untouched" else None
f = jax.jit(lambda x: jnp.cumsum(x @ x.T, axis=0) @ x, device=jax.devices()[0])
x = jnp.ones((4096, 512), jnp.float32) / 512
compiled = f.lower(x).compile()
faults = []
for _ in range(10):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    compiled(x).block_until_ready()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
# XLA:CPU's intra-op pool (threads named tf_XLAEigen, XLAEigen in older versions).
threads = sum("XLAEigen" in open(f"/proc/self/task/{t}/comm").read()
              for t in os.listdir("/proc/self/task"))
print(json.dumps({"temp_bytes": compiled.memory_analysis().temp_size_in_bytes,
                  "faults": sorted(faults[2:])[len(faults[2:]) // 2],
                  "runtime": runtime and runtime.as_dict(), "devices": jax.device_count(),
                  "pool_threads": threads}))
"""


def _probe(mode: str, fake_devices: int = 8, **env: str) -> dict:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={fake_devices}",
               **env)
    result = subprocess.run([sys.executable, "-c", _PROBE, mode], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator only")
def test_configured_process_reuses_the_temporaries_instead_of_faulting_them_in():
    default = _probe("untouched")
    configured = _probe("configure")
    pages = default["temp_bytes"] / 4096
    assert default["temp_bytes"] > 64 * 2**20  # above glibc's arena heap size: mmap by default
    # By default every call maps its temporaries afresh: one fault per 4 KB page touched.
    assert default["faults"] > 0.5 * pages, default
    # Configured, a call finds them mapped already (what faults is mostly its 8 MB output).
    assert configured["faults"] < 0.2 * pages, configured
    assert configured["runtime"] == {"inline_dispatch": True, "heap_reuse": True,
                                     "cpu_devices": 8, "notes": []}


def test_configure_after_the_first_computation_says_dispatch_stayed_async():
    runtime = _probe("after-first-computation")["runtime"]
    assert runtime["inline_dispatch"] is False
    assert runtime["notes"] == ["JAX's CPU client already ran with async dispatch"]


def test_opt_out_leaves_the_process_alone():
    probe = _probe("configure", FLAN_JAX_CPU_DEFAULTS="1")
    assert probe["runtime"] == {"inline_dispatch": False, "heap_reuse": False,
                                "cpu_devices": 8, "notes": ["FLAN_JAX_CPU_DEFAULTS=1"]}
    assert probe["faults"] > 0.5 * probe["temp_bytes"] / 4096


def test_on_a_tpu_host_host_memory_keeps_glibcs_defaults():
    probe = _probe("tpu-default")
    assert probe["runtime"] == {"inline_dispatch": True, "heap_reuse": False, "cpu_devices": 8,
                                "notes": ["default backend tpu: host memory left as is"]}
    assert probe["faults"] > 0.5 * probe["temp_bytes"] / 4096


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/task")
def test_asked_for_devices_xla_runs_a_thread_per_core_not_one_per_fake_device():
    one = _probe("untouched", fake_devices=1)  # XLA's pool: a thread per core it sees
    cores = one["pool_threads"]
    eight = _probe("untouched", fake_devices=8)
    assert eight["devices"] == 8 and eight["pool_threads"] == max(cores, 8), (one, eight)
    # XLA_FLAGS still says 8: configure(2) overrides it, and the pool shrinks with it.
    asked = _probe("devices-2", fake_devices=8)
    assert asked["devices"] == 2 and asked["pool_threads"] == max(cores, 2), asked
    assert asked["runtime"]["cpu_devices"] == 2 and asked["runtime"]["notes"] == []
    # The opt-out keeps the device count: it is the caller's choice, not a default setting.
    assert _probe("devices-2", FLAN_JAX_CPU_DEFAULTS="1")["devices"] == 2


def test_asking_for_devices_after_jax_started_is_reported_not_applied():
    # conftest configured this process; its CPU client exists with its device count.
    have = jax.local_device_count()
    assert cpu_runtime.configure(have).notes == ()
    runtime = cpu_runtime.configure(have + 1)
    assert runtime.cpu_devices == have
    assert runtime.notes == (f"JAX's CPU client already had {have} devices, not {have + 1}",)
    assert f"; {have} CPU devices (JAX's CPU client already had" in runtime.describe()


@pytest.mark.parametrize("bad", [0, -2, True, 2.0, "2"])
def test_a_device_count_that_is_not_positive_is_refused(bad):
    with pytest.raises(ValueError, match="give a positive device count"):
        cpu_runtime.configure(bad)
