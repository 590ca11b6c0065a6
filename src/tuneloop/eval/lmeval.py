"""Layer B of the scorecard: lm-evaluation-harness tasks, run through tuneloop's engine.

An optional extra (``pip install 'tuneloop[lmeval]'``). lm-eval supplies the tasks,
prompts, filters and metrics; tuneloop supplies the model, so a task runs on anything
that speaks :class:`~tuneloop.runtime.types.ChatModel`::

    engine = LocalEngine.from_ref("smollm2-135m-instruct")
    tasks = evaluate(engine, ["tuneloop_arithmetic"], include_path="data/eval/lm_eval")
    tasks["tuneloop_arithmetic"]["metrics"]["exact_match_last-number"]   # mean, low, high, n

    import_results("out/model/results_2026-11-30T12-00-00.json")  # what `lm_eval` wrote

* :class:`TuneloopLM` adapts a ``ChatModel`` to lm-eval's ``LM`` interface.
  ``generate_until`` goes through :func:`~tuneloop.runtime.types.generate_many`, so a
  local engine generates in batches and an OpenAI-compatible endpoint
  (``OpenAIChatModel``) works too. ``loglikelihood`` and ``loglikelihood_rolling``
  need the weights and run only on a ``LocalEngine`` (possibly inside ``CachedModel``).
* :func:`evaluate` runs ``lm_eval.simple_evaluate`` on it with per-sample logs;
  :func:`to_task_entries` turns lm-eval's output into ``results.json`` task entries
  (layer ``"B"``), with bootstrap CIs over the per-sample values so the release gate's
  paired tests work on Layer B as on every other layer.

Chat templates: lm-eval renders a chat history through :meth:`TuneloopLM.apply_chat_template`;
we render it with tuneloop's own renderer and remember which messages made which text,
so ``generate_until`` hands the *messages* back to the model. A prompt lm-eval did not
render that way (``apply_chat_template=False``) is sent as one user message: a
``ChatModel`` only takes messages. Generation is greedy; sampling settings in a task's
``generation_kwargs`` are ignored.

Offline local tasks: a task YAML may give ``dataset_kwargs.data_files`` relative to
its own folder (``data/eval/lm_eval/*.yaml`` do); :func:`evaluate` resolves them, so a
run does not depend on the working directory.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

try:
    from lm_eval.api.model import LM
except ImportError as exc:  # pragma: no cover - the extra is part of `make setup`
    raise ImportError(
        "tuneloop.eval.lmeval needs lm-evaluation-harness: pip install 'tuneloop[lmeval]'"
    ) from exc

from tuneloop.eval.cache import CachedModel
from tuneloop.eval.stats import bootstrap_ci
from tuneloop.models.chat_template import render_text
from tuneloop.runtime.backends.local import LocalEngine
from tuneloop.runtime.types import ChatModel, GenerationConfig, Message, generate_many

_Z95 = 1.959963984540054
"""Two-sided 95% normal quantile, for CIs from a reported standard error."""


def _local_engine(model: Any) -> LocalEngine | None:
    while isinstance(model, CachedModel):
        model = model.model
    return model if isinstance(model, LocalEngine) else None


class TuneloopLM(LM):
    """lm-eval's ``LM`` over a tuneloop ``ChatModel``.

    ``batch_size`` bounds the conversations per ``generate_many`` call and the
    sequences per forward pass when scoring log-likelihoods.
    """

    def __init__(self, model: ChatModel, *, batch_size: int = 16):
        super().__init__()
        self.model = model
        self.batch_size = batch_size
        self._engine = _local_engine(model)
        self._chats: dict[str, tuple[list[Message], bool]] = {}
        """Rendered prompt -> (messages, ends with a prefilled assistant turn)."""

    # ------------------------------------------------------------------ chat templates

    @property
    def tokenizer_name(self) -> str:
        """Keys lm-eval's request cache; the tokenizer's path, else the model's name."""
        if self._engine is not None:
            return str(self._engine.tokenizer.name_or_path).replace("/", "__")
        return str(getattr(self.model, "name", type(self.model).__name__)).replace("/", "__")

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        """The local tokenizer's template (recorded by lm-eval); "" for a remote model."""
        if not chat_template:
            return None
        if self._engine is None:
            return ""
        return self._engine.tokenizer.chat_template or ""

    def apply_chat_template(
        self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True
    ) -> str:
        """Render ``chat_history`` as the model will see it, and remember the messages.

        ``add_generation_prompt=False`` means the last (assistant) message is a prefix
        the model continues, as lm-eval's ``hf`` backend does with
        ``continue_final_message``.
        """
        messages = [dict(m) for m in chat_history]
        if self._engine is None:
            text = json.dumps(messages, ensure_ascii=False, sort_keys=True)
        elif add_generation_prompt:
            text = render_text(self._engine.tokenizer, messages)
        else:
            prefix = render_text(self._engine.tokenizer, messages[:-1])
            text = prefix + str(messages[-1]["content"])
        self._chats[text] = (messages, not add_generation_prompt)
        return text

    def _messages(self, context: str) -> list[Message]:
        if context not in self._chats:
            return [{"role": "user", "content": context}]
        messages, prefilled = self._chats[context]
        if prefilled:
            raise ValueError(
                "generate_until with a prefilled assistant turn (a task's gen_prefix) is not "
                "supported: a ChatModel starts a new assistant turn"
            )
        return messages

    # ------------------------------------------------------------------ generation

    def generate_until(self, requests: list[Any]) -> list[str]:
        """Greedy completions, batched by (``until``, ``max_gen_toks``), stops honoured."""
        results = [""] * len(requests)
        groups: dict[tuple[tuple[str, ...], int], list[int]] = {}
        for i, request in enumerate(requests):
            kwargs = request.args[1] or {}
            until = kwargs.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            key = (tuple(until), int(kwargs.get("max_gen_toks", 256)))
            groups.setdefault(key, []).append(i)
        for (until, max_tokens), indices in groups.items():
            config = GenerationConfig(max_new_tokens=max_tokens, stop=list(until))
            # Longest first, so each batch holds prompts of similar length (less padding).
            indices.sort(key=lambda i: len(requests[i].args[0]), reverse=True)
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                conversations = [self._messages(requests[i].args[0]) for i in chunk]
                for i, output in zip(chunk, generate_many(self.model, conversations, config),
                                     strict=True):  # fmt: skip
                    results[i] = output.text
                    self.cache_hook.add_partial("generate_until", requests[i].args, output.text)
        return results

    # ------------------------------------------------------------------ log-likelihoods

    def _require_engine(self, task_type: str) -> LocalEngine:
        if self._engine is None:
            raise NotImplementedError(
                f"{task_type} tasks need the model's weights: run them on a LocalEngine "
                f"(this model is {type(self.model).__name__}); generate_until tasks run anywhere"
            )
        return self._engine

    def _encode(self, text: str) -> list[int]:
        return self._engine.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _prefix_token(self) -> int:
        tokenizer = self._engine.tokenizer
        if tokenizer.bos_token_id is not None:
            return tokenizer.bos_token_id
        return self._engine.eos_token_ids[0]

    def _encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """Token ids of context and continuation, split as lm-eval's ``hf`` backend does:
        trailing spaces move to the continuation, and the whole text is encoded once."""
        if not context:
            return [self._prefix_token()], self._encode(continuation)
        spaces = len(context) - len(context.rstrip())
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        whole = self._encode(context + continuation)
        n_context = len(self._encode(context))
        return whole[:n_context], whole[n_context:]

    def loglikelihood(self, requests: list[Any]) -> list[tuple[float, bool]]:
        """``(log p(continuation | context), continuation is the greedy answer)``."""
        self._require_engine("loglikelihood (multiple_choice)")
        return self._score([self._encode_pair(*r.args) for r in requests])

    def loglikelihood_rolling(self, requests: list[Any]) -> list[float]:
        """Log-likelihood of whole texts, in disjoint windows of the context length."""
        from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

        engine = self._require_engine("loglikelihood_rolling (perplexity)")
        max_len = engine.context_window or 2048
        windows, owners = [], []
        for i, request in enumerate(requests):
            for window in get_rolling_token_windows(
                token_list=self._encode(request.args[0]),
                prefix_token=self._prefix_token(),
                max_seq_len=max_len,
                context_len=1,
            ):
                windows.append(make_disjoint_window(window))
                owners.append(i)
        totals = [0.0] * len(requests)
        for owner, (logprob, _) in zip(owners, self._score(windows), strict=True):
            totals[owner] += logprob
        return totals

    def _score(self, pairs: list[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
        """Sum of continuation log-probs and greedy-match, right-padded batches, no grad."""
        import torch

        engine = self._engine
        max_len = engine.context_window or 2048
        inputs = [(ctx + cont)[-(max_len + 1) :][:-1] for ctx, cont in pairs]
        order = sorted(range(len(pairs)), key=lambda i: len(inputs[i]), reverse=True)
        results: list[tuple[float, bool]] = [(0.0, False)] * len(pairs)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            width = max(len(inputs[i]) for i in chunk)
            ids = torch.full((len(chunk), width), engine.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, i in enumerate(chunk):
                ids[row, : len(inputs[i])] = torch.tensor(inputs[i], dtype=torch.long)
                mask[row, : len(inputs[i])] = 1
            with torch.inference_mode():
                logits = engine.model(input_ids=ids, attention_mask=mask).logits
                logprobs = torch.log_softmax(logits.float(), dim=-1)
            for row, i in enumerate(chunk):
                cont, end = pairs[i][1], len(inputs[i])
                # Logits at position j predict token j + 1: the continuation's k tokens
                # are predicted by the last k input positions.
                steps = logprobs[row, end - len(cont) : end]
                target = torch.tensor(cont, dtype=torch.long)
                total = float(steps.gather(1, target[:, None]).sum())
                results[i] = (total, bool((steps.argmax(-1) == target).all()))
        return results


# ---------------------------------------------------------------------- running tasks


def _resolve_data_files(cfg: dict[str, Any], folder: Path) -> dict[str, Any]:
    files = (cfg.get("dataset_kwargs") or {}).get("data_files")
    if files is None:
        return cfg

    def fix(p: Any) -> Any:
        if isinstance(p, list):
            return [fix(x) for x in p]
        path = Path(str(p))
        return str(folder / path) if not path.is_absolute() and (folder / path).exists() else p

    resolved = {k: fix(v) for k, v in files.items()} if isinstance(files, dict) else fix(files)
    return {**cfg, "dataset_kwargs": {**cfg["dataset_kwargs"], "data_files": resolved}}


def run_lm_eval(
    lm: Any,
    tasks: list[str],
    *,
    include_path: str | Path | None = None,
    limit: int | None = None,
    num_fewshot: int | None = None,
    apply_chat_template: bool = True,
) -> dict[str, Any]:
    """``lm_eval.simple_evaluate`` on any lm-eval ``LM`` (a :class:`TuneloopLM`, or
    lm-eval's own ``HFLM`` for comparison), with per-sample logs; lm-eval's raw output.

    With ``include_path`` only that folder is indexed (lm-eval's built-in tasks are not
    scanned) unless a task is not found there; its tasks' relative ``data_files`` are
    resolved against each YAML's folder.
    """
    import lm_eval
    from lm_eval.tasks import TaskManager
    from lm_eval.tasks._yaml_loader import load_yaml

    manager = None
    if include_path is not None:
        manager = TaskManager(include_path=str(include_path), include_defaults=False)
        if not set(tasks) <= set(manager.all_tasks):
            manager = TaskManager(include_path=str(include_path))
    manager = manager or TaskManager()
    local = Path(include_path).resolve() if include_path is not None else None
    specs: list[Any] = []
    for name in tasks:
        entry = manager.task_index.get(name)
        path = entry.yaml_path if entry is not None and entry.kind.name == "TASK" else None
        if local is None or path is None or not path.resolve().is_relative_to(local):
            specs.append(name)  # lm-eval's own tasks, groups, tags: loaded by name
            continue
        cfg = load_yaml(path)
        fixed = _resolve_data_files(cfg, path.parent)
        specs.append(fixed if fixed != cfg else name)
    return lm_eval.simple_evaluate(
        model=lm,
        tasks=specs,
        task_manager=manager,
        limit=limit,
        num_fewshot=num_fewshot,
        apply_chat_template=apply_chat_template,
        log_samples=True,
    )


def evaluate(
    model: ChatModel,
    tasks: list[str],
    *,
    include_path: str | Path | None = None,
    limit: int | None = None,
    num_fewshot: int | None = None,
    apply_chat_template: bool = True,
) -> dict[str, dict]:
    """Run lm-eval ``tasks`` on ``model`` through :class:`TuneloopLM`; one
    ``results.json`` task entry per task (see :func:`to_task_entries`)."""
    output = run_lm_eval(TuneloopLM(model), tasks, include_path=include_path, limit=limit,
                         num_fewshot=num_fewshot, apply_chat_template=apply_chat_template)  # fmt: skip
    return to_task_entries(output)


# ---------------------------------------------------------------------- converting results


def _metric_name(metric: str, filter_name: str) -> str:
    return metric if filter_name == "none" else f"{metric}_{filter_name}"


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float))  # bool included: some metrics log True/False


def _from_stderr(mean: float, stderr: Any, n: int) -> dict[str, Any]:
    if not _is_number(stderr) or math.isnan(float(stderr)):
        return {"mean": mean, "low": None, "high": None, "n": n}
    half = _Z95 * float(stderr)
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n}


def _sample_output(row: dict[str, Any]) -> str:
    """The model's answer: generated text, or the choice with the highest log-likelihood."""
    resps = row.get("resps") or []
    first = resps[0][0] if resps and resps[0] else ""
    if isinstance(first, str):
        return first
    args = row.get("arguments") or []
    if isinstance(args, dict):  # as the CLI's samples file writes them: {"gen_args_0": {"arg_0"..
        args = [[a[f"arg_{j}"] for j in range(len(a))] for a in
                (args[f"gen_args_{k}"] for k in range(len(args)))]  # fmt: skip
    if len(args) > 1 and all(isinstance(r[0], (list, tuple)) for r in resps):
        best = max(range(len(resps)), key=lambda k: float(resps[k][0][0]))  # str in files
        return str(args[best][1]).strip()
    return json.dumps(resps)


def _explanation(row: dict[str, Any]) -> str:
    filtered = row.get("filtered_resps") or [None]
    shown = filtered[0] if isinstance(filtered[0], str) else None
    got = f"filter {row.get('filter')}: {shown!r}; " if shown is not None else ""
    return f"{got}target {row.get('target')!r}"


def _samples_and_values(rows: list[dict[str, Any]]) -> tuple[list[dict], dict[str, list[float]]]:
    by_doc: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:  # one row per document and filter
        by_doc.setdefault(row["doc_id"], []).append(row)
    samples, values = [], {}
    for doc_id in sorted(by_doc):
        scores: dict[str, dict[str, Any]] = {}
        for row in by_doc[doc_id]:
            for metric in row.get("metrics", []):
                value = row.get(metric)
                if not _is_number(value):
                    continue  # corpus-level metrics (bleu, ...) log tuples, not scores
                name = _metric_name(metric, row.get("filter", "none"))
                value = float(value)
                scores[name] = {"value": value, "passed": value >= 1.0 if value in (0.0, 1.0)
                                else None, "explanation": _explanation(row)}  # fmt: skip
                values.setdefault(name, []).append(value)
        doc = by_doc[doc_id][0].get("doc") or {}
        sample_id = doc.get("id", doc_id) if isinstance(doc, dict) else doc_id
        samples.append({"id": str(sample_id), "category": None,
                        "output": _sample_output(by_doc[doc_id][0]), "scores": scores})  # fmt: skip
    return samples, values


def to_task_entries(lm_eval_output: dict[str, Any]) -> dict[str, dict]:
    """lm-eval's output (``simple_evaluate``'s dict or a results JSON with ``samples``)
    as ``results.json`` task entries::

        {TASK: {"layer": "B", "n", "errors": 0,
                "metrics": {METRIC: {"mean", "low", "high", "n"}}, "categories": {},
                "samples": [{"id", "category": None, "output",
                             "scores": {METRIC: {"value", "passed", "explanation"}}}]}}

    ``METRIC`` is lm-eval's metric, suffixed with the filter unless it is ``none``
    (``exact_match,last-number`` -> ``exact_match_last-number``). When the logged
    per-sample values reproduce lm-eval's number (mean aggregation), the CI is a
    bootstrap over them; otherwise (no samples, corpus-level metrics) it is
    ``mean ± 1.96 · stderr`` from lm-eval's reported standard error, or null.
    """
    n_samples = lm_eval_output.get("n-samples", {})
    subtasks = lm_eval_output.get("group_subtasks", {})
    logged = lm_eval_output.get("samples") or {}
    entries: dict[str, dict] = {}
    for task, reported in lm_eval_output.get("results", {}).items():
        samples, values = _samples_and_values(logged.get(task, []))
        if task in n_samples:
            n = int(n_samples[task]["effective"])
        else:  # a group: its subtasks' documents
            n = sum(int(n_samples.get(t, {}).get("effective", 0)) for t in subtasks.get(task, []))
        metrics: dict[str, dict[str, Any]] = {}
        for key, mean in reported.items():
            if "," not in key or "_stderr," in key or not _is_number(mean):
                continue
            metric, filter_name = key.split(",", 1)
            name = _metric_name(metric, filter_name)
            per_sample = values.get(name, [])
            if per_sample and math.isclose(sum(per_sample) / len(per_sample), float(mean),
                                           rel_tol=1e-6, abs_tol=1e-9):  # fmt: skip
                ci = bootstrap_ci(per_sample)
                metrics[name] = {"mean": ci.estimate, "low": ci.low, "high": ci.high, "n": ci.n}
            else:
                stderr = reported.get(f"{metric}_stderr,{filter_name}")
                metrics[name] = _from_stderr(float(mean), stderr, n)
        entries[task] = {"layer": "B", "n": n, "errors": 0, "metrics": metrics,
                         "categories": {}, "samples": samples}  # fmt: skip
    return entries


def import_results(path: str | Path) -> dict[str, dict]:
    """Task entries from what the ``lm_eval`` CLI wrote with ``--output_path``.

    ``path`` is a ``results_<date>.json`` file, or a folder holding one (the newest is
    taken). Its ``samples_<task>_<date>.jsonl`` neighbours (``--log_samples``) are read
    when present; without them every metric gets a normal-approximation CI from the
    reported stderr and ``samples`` is empty.
    """
    path = Path(path)
    if path.is_dir():
        found = sorted(path.rglob("results_*.json"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise FileNotFoundError(f"{path}: no results_*.json (lm_eval --output_path) inside")
        path = found[-1]
    output = json.loads(path.read_text(encoding="utf-8"))
    stamp = path.stem.removeprefix("results_")
    output["samples"] = {}
    for task in output.get("results", {}):
        file = path.parent / f"samples_{task}_{stamp}.jsonl"
        if file.exists():
            with file.open(encoding="utf-8") as f:
                output["samples"][task] = [json.loads(line) for line in f if line.strip()]
    return to_task_entries(output)
