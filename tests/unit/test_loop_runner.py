"""The loop runner's bookkeeping: stage order, stage.json, resume by inputs and outputs
hashes, failures. Stages run in-process through a fake launcher (the real stages run
in tests/integration/test_loop_quick.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tuneloop.loop import LoopConfigError, LoopError, load_loop_config, run_loop
from tuneloop.loop.runner import STAGE_FILE, SUMMARY_FILE

ROOT = Path(__file__).resolve().parents[2]
ORDER = ["baseline", "assistant", "data", "sft", "dpo", "export", "candidate", "report"]


class FakeLaunch:
    """Writes a fresh output file and a summary per stage; can fail named stages."""

    def __init__(self, fail: tuple[str, ...] = ()):
        self.ran: list[str] = []
        self.fail = fail

    def __call__(self, stage, loop_dir: Path) -> tuple[int, float]:
        self.ran.append(stage.name)
        if stage.name in self.fail:
            return 1, 5.0
        folder = loop_dir / stage.folder
        (folder / "out.txt").write_text(f"{stage.name} {time.time_ns()}")
        (folder / SUMMARY_FILE).write_text(json.dumps({"stage": stage.name}))
        return 0, 123.4


def config(tmp_path: Path, *overrides: str):
    return load_loop_config(
        ROOT / "configs/loop/quick.yaml", [f"output_dir={tmp_path}", *overrides]
    )


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # config paths are relative to the repository root


def test_a_fresh_loop_runs_every_stage_in_order_and_records_it(tmp_path):
    launch = FakeLaunch()
    result = run_loop(config(tmp_path), launch=launch, say=lambda _: None)
    assert launch.ran == ORDER
    loop_dir = Path(result["loop_dir"])
    assert (loop_dir / "config.yaml").is_file()
    for number, name in enumerate(ORDER, start=1):
        record = json.loads((loop_dir / f"{number:02d}-{name}" / STAGE_FILE).read_text())
        assert record["state"] == "completed"
        assert record["peak_rss_mib"] == 123.4 and record["wall_s"] >= 0
        assert len(record["inputs_hash"]) == 64 and len(record["outputs_hash"]) == 64
        assert record["summary"] == {"stage": name}


def test_an_existing_loop_is_not_overwritten_without_resume(tmp_path):
    run_loop(config(tmp_path), launch=FakeLaunch(), say=lambda _: None)
    with pytest.raises(LoopError, match="--resume"):
        run_loop(config(tmp_path), launch=FakeLaunch(), say=lambda _: None)


def test_resume_with_nothing_changed_runs_nothing(tmp_path):
    run_loop(config(tmp_path), launch=FakeLaunch(), say=lambda _: None)
    again = FakeLaunch()
    result = run_loop(config(tmp_path), resume=True, launch=again, say=lambda _: None)
    assert again.ran == []
    assert all(r.get("skipped") for r in result["stages"].values())


def test_a_changed_training_key_reruns_that_stage_and_everything_downstream(tmp_path):
    run_loop(config(tmp_path), launch=FakeLaunch(), say=lambda _: None)
    again = FakeLaunch()
    run_loop(config(tmp_path, "sft.max_steps=3"), resume=True, launch=again, say=lambda _: None)
    assert again.ran == ["sft", "dpo", "export", "candidate", "report"]


def test_a_tampered_output_reruns_its_stage(tmp_path):
    result = run_loop(config(tmp_path), launch=FakeLaunch(), say=lambda _: None)
    (Path(result["loop_dir"]) / "03-data" / "out.txt").write_text("edited by hand")
    again = FakeLaunch()
    run_loop(config(tmp_path), resume=True, launch=again, say=lambda _: None)
    assert again.ran == ["data", "sft", "dpo", "export", "candidate", "report"]


def test_a_failed_stage_stops_the_loop_and_resume_continues_from_it(tmp_path):
    with pytest.raises(LoopError, match="04-sft failed"):
        run_loop(config(tmp_path), launch=FakeLaunch(fail=("sft",)), say=lambda _: None)
    record = json.loads((tmp_path / "quick" / "04-sft" / STAGE_FILE).read_text())
    assert record["state"] == "failed" and record["exit_code"] == 1
    assert not (tmp_path / "quick" / "05-dpo").exists()
    again = FakeLaunch()
    run_loop(config(tmp_path), resume=True, launch=again, say=lambda _: None)
    assert again.ran == ["sft", "dpo", "export", "candidate", "report"]


def test_without_dpo_the_stage_is_left_out(tmp_path):
    launch = FakeLaunch()
    run_loop(config(tmp_path, "dpo=null"), launch=launch, say=lambda _: None)
    assert launch.ran == [s for s in ORDER if s != "dpo"]


def test_config_errors_name_the_file_and_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "configs/loop/quick.yaml").read_text() + "\nsurprise: 1\n")
    with pytest.raises(LoopConfigError, match=r"bad\.yaml: surprise: unknown key"):
        load_loop_config(bad)
    with pytest.raises(LoopConfigError, match=r"assistant\.limit"):
        load_loop_config(ROOT / "configs/loop/quick.yaml", ["assistant.limit=0"])
    with pytest.raises(LoopConfigError, match="key=value"):
        load_loop_config(ROOT / "configs/loop/quick.yaml", ["nonsense"])


def test_dotted_overrides_reach_the_recipe_blocks():
    cfg = load_loop_config(
        ROOT / "configs/loop/demo.yaml", ["sft.max_steps=7", "assistant.limit=2"]
    )
    assert cfg.sft.set["max_steps"] == 7 and cfg.sft.set["learning_rate"] == 1.0e-3
    assert cfg.assistant.limit == 2


@pytest.mark.parametrize("name", ["demo", "quick"])
def test_shipped_loop_configs_load_with_files_that_exist(name):
    from tuneloop.eval.gate import load_policy
    from tuneloop.eval.tasks import load_scorecard
    from tuneloop.loop.stages import active_stages, config_files

    cfg = load_loop_config(ROOT / f"configs/loop/{name}.yaml")
    load_scorecard(cfg.scorecard)
    load_policy(cfg.gate)
    for stage in active_stages(cfg):
        assert all(p.is_file() for p in config_files(cfg, stage))



def test_demo_mix_counts_take_every_row_of_the_training_targets():
    """demo.yaml says its counts use every tool-call, schema and security row: a count
    below the file's rows would leave some unseen, one above would repeat rows. Regenerated
    reference data that changes a file's size fails here until the count follows."""
    cfg = load_loop_config(ROOT / "configs/loop/demo.yaml")
    counts = {Path(s["path"]).name: s.get("count") for s in cfg.data.sft_sources}
    for name in ("tool_calls.jsonl", "json_schema.jsonl", "security.jsonl"):
        rows = sum(1 for line in (ROOT / "data/sft" / name).read_text().splitlines() if line.strip())
        assert counts[name] == rows, f"{name}: count {counts[name]}, file has {rows} rows"

def test_a_second_loop_on_the_same_folder_is_refused_while_one_runs(tmp_path):
    cfg = config(tmp_path)

    def launch_and_compete(stage, loop_dir):
        if stage.name == "baseline":
            with pytest.raises(LoopError, match="in use"):
                run_loop(cfg, resume=True, launch=FakeLaunch(), say=lambda _: None)
        return FakeLaunch()(stage, loop_dir)

    run_loop(cfg, launch=launch_and_compete, say=lambda _: None)
