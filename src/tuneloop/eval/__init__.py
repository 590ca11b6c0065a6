"""Evaluation: scorers, statistics, verifiable instructions, the security pack, the
generation cache, the scorecard runner (``tuneloop eval``) and the release gate
(``tuneloop gate``). Judged comparisons, tool/agent tasks with pass@k and the
lm-eval extra are still to come (issue 7).

Importing this package registers every built-in scorer by name (``get_scorer``).
"""

from tuneloop.eval import ifeval, security, validators  # noqa: F401  (register scorers)
from tuneloop.eval.scoring import Completion, Score, get_scorer, registered_scorers, scorer

__all__ = ["Completion", "Score", "get_scorer", "registered_scorers", "scorer"]
