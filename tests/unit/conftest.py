"""The unit tier reaches no cluster and no engine, whatever the environment points at."""

from hermetic import hermetic_tier  # noqa: F401  (an autouse fixture: importing it applies it)
