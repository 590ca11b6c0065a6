"""``tuneloop loop CONFIG [--resume]``: the whole loop, stage by stage, in one folder.

Exit codes: 0 the candidate passed the gate, 1 the gate blocked it or a stage failed,
2 a bad config (the message names the file and the field).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tuneloop.cli._common import fail, out, user_errors


def loop(
    config: Annotated[
        Path, typer.Argument(help="Loop config YAML (configs/loop/demo.yaml, quick.yaml).")
    ],
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue the loop folder: stages whose outputs exist and match their inputs are skipped.",
        ),
    ] = False,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Override a config key: key=value; dotted for blocks (sft.max_steps=5)."
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print the resolved config and the stages; run nothing."),
    ] = False,
) -> None:
    """Run the loop: baseline scorecard, assistant traces, mined + reference data, SFT
    (then DPO), merge and export, candidate scorecard and gate, and one HTML report."""
    from tuneloop.loop import LoopConfigError, LoopError, load_loop_config, run_loop
    from tuneloop.loop.stages import active_stages

    try:
        cfg = load_loop_config(config, set_ or [])
    except LoopConfigError as exc:
        fail(str(exc), code=2)
    loop_dir = Path(cfg.output_dir) / cfg.name
    if dry_run:
        import yaml

        out.rule("resolved config")
        out.print(
            yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False),
            highlight=False,
            markup=False,
        )
        out.rule("stages")
        for stage in active_stages(cfg):
            out.print(f"{loop_dir / stage.folder}", highlight=False)
        return
    try:
        result = run_loop(cfg, resume=resume, say=lambda line: out.print(line, highlight=False))
    except (LoopError, ValueError, *user_errors()) as exc:
        fail(str(exc))
    stages = result["stages"]
    candidate = stages["candidate"]["summary"]
    for metric, c in candidate.get("comparison", {}).items():
        if c.get("difference") is not None:
            out.print(f"{metric:<32} {c['baseline']:.3f} -> {c['candidate']:.3f}  "
                      f"{c['difference']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}]", highlight=False)  # fmt: skip
    verdict = "PASSED" if candidate["gate_passed"] else "BLOCKED"
    gate_file = loop_dir / stages["candidate"]["folder"] / "gate.json"
    if not candidate["gate_passed"]:
        failed = [r["rule"] for r in json.loads(gate_file.read_text())["rules"] if not r["passed"]]
        out.print("failed rules: " + "; ".join(failed), highlight=False)
    out.print(f"gate: {verdict}", highlight=False)
    out.print(f"report: {stages['report']['summary']['report']}", highlight=False, soft_wrap=True)
    if not candidate["gate_passed"]:
        raise typer.Exit(1)
