"""Which records were in the batch that caused a step's loss: a collator wrapper + trainer hook."""

from __future__ import annotations

from collections import deque


class RecordTrackingCollator:
    """Wrap a collator: pop each example's ``record`` id and queue the ids per micro-batch."""

    def __init__(self, inner, queue: deque):
        self.inner = inner
        self.queue = queue

    def __call__(self, examples):
        if examples and "record" in examples[0]:
            self.queue.append([e.pop("record") for e in examples])
        return self.inner(examples)


def track_records(trainer_cls):
    """A one-level subclass of a TRL/transformers trainer that moves queued record ids
    into ``step_records`` as each micro-batch is trained (the dataloader runs ahead)."""

    class Tracked(trainer_cls):
        def __init__(self, *args, record_queue: deque, step_records: deque, **kwargs):
            self._record_queue = record_queue
            self._step_records = step_records
            super().__init__(*args, **kwargs)

        def training_step(self, model, inputs, *args, **kwargs):
            if self._record_queue:
                self._step_records.extend(self._record_queue.popleft())
            return super().training_step(model, inputs, *args, **kwargs)

    Tracked.__name__ = Tracked.__qualname__ = f"Tracked{trainer_cls.__name__}"
    return Tracked
