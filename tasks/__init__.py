"""seqio Tasks and Mixtures of flan_jax; `import tasks` registers them all."""
from tasks import mini  # noqa: F401  (registers on import)
