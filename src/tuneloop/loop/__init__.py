"""The loop, end to end: baseline scorecard -> assistant traces -> mined + reference data
-> SFT (-> DPO) -> merge and export -> candidate scorecard and gate -> one report.

::

    from tuneloop.loop import load_loop_config, run_loop

    result = run_loop(load_loop_config("configs/loop/quick.yaml"), resume=True)

Every stage is a separate, restartable step in ``loops/<name>/NN-stage/``
(:mod:`tuneloop.loop.runner`); what each does is in :mod:`tuneloop.loop.stages`.
"""

from tuneloop.loop.config import LoopConfig, LoopConfigError, load_loop_config
from tuneloop.loop.runner import LoopError, run_loop

__all__ = ["LoopConfig", "LoopConfigError", "LoopError", "load_loop_config", "run_loop"]
