"""Layer D: tool and agent tasks, graded from what the run actually did.

The ``agent_success`` scorer reads the tool calls the runtime *executed*
(``Completion.tool_calls``, filled by the ``assistant`` solver) and the final answer. A
sample passes when

* every tool in ``metadata.expected_tools`` ran successfully at least once,
* no tool in ``metadata.forbidden_tools`` was called (executed or attempted),
* at most ``metadata.max_tool_calls`` calls ran (when set), and
* the final answer holds ``target``: a number target (``"7006652"``) matches any number
  in the answer exactly (thousands separators and ``-`` signs handled); a text target
  matches as whole normalized tokens (case, punctuation and articles ignored). A list
  target passes on any of its items.

::

    {"id": "agent-0001", "input": [{"role": "user", "content": "What is 37 * 91 + 5?"}],
     "target": "3372", "metadata": {"expected_tools": ["calculator"]}}

A model that writes the right number without running the tool fails: the task is to
use the tool, and a fabricated tool trace never counts as one.
"""

from __future__ import annotations

from tuneloop.data.records import EvalSample
from tuneloop.eval.scoring import Completion, Score, scorer
from tuneloop.eval.validators import contains_answer, numbers_in, parse_number


def _meta_list(sample: EvalSample, key: str) -> list[str]:
    value = (sample.metadata.model_extra or {}).get(key) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"sample {sample.id!r}: scorer 'agent_success' needs metadata.{key}: "
                         f"a list of tool names, got {value!r}")  # fmt: skip
    return value


def _answer_holds(answer: str, target: str) -> bool:
    wanted = parse_number(target)
    if wanted is not None:
        return wanted in numbers_in(answer)
    return contains_answer(answer, target)


@scorer("agent_success")
def agent_success(sample: EvalSample, completion: Completion) -> Score:
    """Task success from the executed tool calls and the final answer (see the module)."""
    target = sample.target
    targets = [target] if isinstance(target, str) else target
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
        raise ValueError(f"sample {sample.id!r}: scorer 'agent_success' needs target: a string "
                         "or a non-empty list of strings")  # fmt: skip
    expected = _meta_list(sample, "expected_tools")
    forbidden = _meta_list(sample, "forbidden_tools")
    limit = (sample.metadata.model_extra or {}).get("max_tool_calls")
    ran_ok = [c["name"] for c in completion.tool_calls if c.get("ok")]
    called = {c.get("name") for c in [*completion.tool_calls, *completion.attempted_tool_calls]}
    meta = {"tools_ok": ran_ok, "calls": len(completion.tool_calls)}
    if completion.error is not None:
        return Score.binary(False, f"the run failed: {completion.error}", **meta)
    if missing := [t for t in expected if t not in ran_ok]:
        return Score.binary(False, f"expected tool(s) never ran successfully: {missing}", **meta)
    if bad := sorted(t for t in forbidden if t in called):
        return Score.binary(False, f"called forbidden tool(s): {bad}", **meta)
    if isinstance(limit, int) and len(completion.tool_calls) > limit:
        return Score.binary(False, f"{len(completion.tool_calls)} tool calls, at most {limit} "
                            "allowed", **meta)  # fmt: skip
    hit = next((t for t in targets if _answer_holds(completion.text, t)), None)
    if hit is None:
        return Score.binary(False, f"answer {completion.text[:80]!r} does not hold any of "
                            f"{targets!r}", **meta)  # fmt: skip
    return Score.binary(True, f"tools {ran_ok} ran; answer holds {hit!r}", **meta)
