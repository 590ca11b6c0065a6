"""Trainer callbacks: metrics.jsonl, and monitors for loss spikes and gradient anomalies."""

from __future__ import annotations

import json
import logging
import math
import time
from collections import deque
from pathlib import Path

from transformers import TrainerCallback

log = logging.getLogger("tuneloop.train")


class MetricsCallback(TrainerCallback):
    """Append every log (train and eval) to ``metrics.jsonl`` with step, time and tokens/s."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._last_time: float | None = None
        self._last_tokens = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self._last_time = time.perf_counter()
        self._last_tokens = state.num_input_tokens_seen or 0

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        row = {"step": state.global_step, "epoch": state.epoch, "time": time.time(), **logs}
        now = time.perf_counter()
        tokens = state.num_input_tokens_seen or 0
        if "loss" in logs and self._last_time is not None and now > self._last_time:
            row["tokens_per_s"] = (tokens - self._last_tokens) / (now - self._last_time)
            self._last_time, self._last_tokens = now, tokens
        with open(self.path, "a") as fh:
            fh.write(json.dumps(row, default=float) + "\n")


class AnomalyMonitor(TrainerCallback):
    """Warn (and optionally stop) on a loss spike or a bad gradient norm.

    A spike is a loss above ``spike_factor`` times the mean of the previous
    ``window`` losses (after ``warmup`` logged steps). The warning names the step and
    the records of the batch that caused it (from ``batch_records``, filled by the trainer).
    """

    def __init__(self, spike_factor: float, grad_norm_threshold: float, stop: bool,
                 batch_records: deque, window: int = 20, warmup: int = 5):  # fmt: skip
        self.spike_factor = spike_factor
        self.grad_norm_threshold = grad_norm_threshold
        self.stop = stop
        self.batch_records = batch_records
        self.losses: deque[float] = deque(maxlen=window)
        self.warmup = warmup
        self.events: list[dict] = []

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step % max(args.logging_steps, 1) == 0:
            self.batch_records.clear()  # records since the last logged step

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs:
            return
        loss, grad = logs.get("loss"), logs.get("grad_norm")
        problems = []
        if loss is not None and not math.isfinite(loss):
            problems.append(f"loss is {loss}")
        elif len(self.losses) >= self.warmup:
            mean = sum(self.losses) / len(self.losses)
            if loss > self.spike_factor * mean:
                problems.append(f"loss spike: {loss:.4f} > {self.spike_factor} x running mean {mean:.4f}")
        if grad is not None and (not math.isfinite(grad) or grad > self.grad_norm_threshold):
            problems.append(f"gradient norm {grad:.4g} (threshold {self.grad_norm_threshold})")
        if loss is not None and math.isfinite(loss):
            self.losses.append(loss)
        if not problems:
            return
        records = list(self.batch_records)
        event = {"step": state.global_step, "problems": problems, "batch_records": records}
        self.events.append(event)
        log.warning("step %d: %s; batch records: %s", state.global_step, "; ".join(problems),
                    ", ".join(records) or "unknown")  # fmt: skip
        if self.stop:
            control.should_save = True
            control.should_training_stop = True
