"""Evaluation: the layered scorecard and the release gate.

* layer A and D scorers (:mod:`~tuneloop.eval.validators`, :mod:`~tuneloop.eval.agent`),
  verifiable instructions (:mod:`~tuneloop.eval.ifeval`), the security pack
  (:mod:`~tuneloop.eval.security`), judged comparisons (:mod:`~tuneloop.eval.judge`),
  lm-eval suites (:mod:`~tuneloop.eval.lmeval`, the ``lmeval`` extra);
* statistics (:mod:`~tuneloop.eval.stats`), the generation cache
  (:mod:`~tuneloop.eval.cache`), scorecards and solvers (:mod:`~tuneloop.eval.tasks`,
  :mod:`~tuneloop.eval.solvers`), the runner (``tuneloop eval``) and the gate
  (``tuneloop gate``).

Importing this package registers every built-in scorer by name (``get_scorer``).
"""

from tuneloop.eval import agent, ifeval, security, validators  # noqa: F401  (register scorers)
from tuneloop.eval.scoring import Completion, Score, get_scorer, registered_scorers, scorer
from tuneloop.eval.tasks import Scorecard, TaskSpec, load_scorecard, registered_tasks, task

__all__ = [
    "Completion",
    "Score",
    "Scorecard",
    "TaskSpec",
    "get_scorer",
    "load_scorecard",
    "registered_scorers",
    "registered_tasks",
    "scorer",
    "task",
]
