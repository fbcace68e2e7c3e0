"""seqio Tasks and Mixtures of flan_jax; `import tasks` registers them all."""
from tasks import flan  # noqa: F401  (registers the FLAN 2021 collection on import)
from tasks import mini  # noqa: F401  (registers mini-FLAN through the same factory)
