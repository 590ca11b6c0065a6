"""Human annotation: blind pairwise comparisons, trace review, active-learning sampling.

store = AnnotationStore("annotations.db")
store.import_pairs_jsonl("pairs.jsonl")           # {"prompt": [...], "responses": [a, b]}
app = create_app(store, trace_store=TraceStore(default_store_path()), seed=0)
# ... annotators judge at /compare?annotator=NAME (keys a / b / t / s) ...
store.export_pairs("preferences.jsonl")           # majority vote -> PreferencePair JSONL
queue_samples(store, sample_for_annotation(model, prompts), top=50)
"""

from tuneloop.annotate.agreement import Agreement, cohen_kappa, majority
from tuneloop.annotate.app import create_app, shown_left
from tuneloop.annotate.sample import SampledPrompt, jaccard, queue_samples, sample_for_annotation
from tuneloop.annotate.store import (
    AnnotationError,
    AnnotationStore,
    ExportReport,
    ImportReport,
    Item,
    Judgement,
)

__all__ = [
    "Agreement",
    "AnnotationError",
    "AnnotationStore",
    "ExportReport",
    "ImportReport",
    "Item",
    "Judgement",
    "SampledPrompt",
    "cohen_kappa",
    "create_app",
    "jaccard",
    "majority",
    "queue_samples",
    "sample_for_annotation",
    "shown_left",
]
