"""The scorer -> TRL reward adapter: a scorer is a reward."""

import tuneloop.eval  # noqa: F401  (registers built-in scorers)
from tuneloop.eval.scoring import Completion, Score, as_reward_function, scorer

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}


def test_json_schema_reward_conversational_and_plain():
    reward = as_reward_function("json_schema", weight=2.0)
    prompts = [[{"role": "user", "content": "give json"}]] * 2
    completions = [[{"role": "assistant", "content": '{"a": 1}'}],
                   [{"role": "assistant", "content": "not json"}]]  # fmt: skip
    assert reward(prompts, completions, schema=[SCHEMA, SCHEMA]) == [2.0, 0.0]
    assert reward(["give json"], ['{"a": 3}'], schema=[SCHEMA]) == [2.0]
    assert reward.__name__ == "json_schema"


def test_value_error_scores_zero_and_is_counted():
    @scorer("_test_raises")
    def raises(sample, completion: Completion) -> Score:
        raise ValueError("bad")

    reward = as_reward_function(raises)
    assert reward(["p", "q"], ["x", "y"]) == [0.0, 0.0]
    assert reward.errors == 2


def test_target_column_reaches_scorer():
    reward = as_reward_function("exact_match")
    assert reward(["p", "q"], ["Paris", "Rome"], target=["Paris", "Paris"]) == [1.0, 0.0]


def test_schema_as_json_text_column_and_extra_trl_kwargs_ignored():
    import json

    reward = as_reward_function("json_schema")
    out = reward(
        ["p"],
        ['{"a": 1}'],
        schema=[json.dumps(SCHEMA)],
        completion_ids=[[1, 2]],
        trainer_state=None,
    )
    assert out == [1.0]
