"""``mcunas search``: run (or resume) a search campaign.

Every flag can also come from ``--config campaign.yaml`` (keys are the flag
names with dashes or underscores); a flag given on the command line wins.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

DEFAULTS = {
    "space": "mobilenet_v1", "data": None, "eval_data": None, "study": "demo", "storage": None,
    "n_trials": 4, "timeout": None, "seed": 0, "sram": None, "flash": None, "macs": None, "board": None,
    "boards_file": None, "latency": None, "runtime": None, "budget_model": "deployable", "memory_plan": "stock", "objectives": "accuracy,sram", "sampler": "tpe",
    "pruner": "none", "epochs": 3, "batch": 32, "recipe": "fast", "max_rejections": 2000,
    "results_dir": "results", "heartbeat": None, "candidate_timeout": None, "qat_epochs": 0, "export_winner": True, "demo_images": 800,
    "halving": None, "rungs": None, "supernet": None, "finalists": 1, "finalist_init": "supernet",
}


def register(sub) -> None:
    from mcunas.cli import BUDGET_HELP
    from mcunas.cli.flags import add_budget_flags
    from mcunas.search.objectives import DIRECTIONS, PRUNERS, SAMPLERS
    from mcunas.search.supernet import FINALIST_INITS
    from mcunas.train.recipes import RECIPES

    p = sub.add_parser(
        "search",
        help="run or resume a search campaign (Optuna study)",
        description="Sample architectures from a space, reject every candidate over budget before "
        "training, train the rest on VWW, record int8 accuracy and costs in an Optuna study, and write "
        "results/<study>/ (trials.csv, pareto.csv, Pareto PNGs, summary.md, the exported winner). "
        "Re-running the same command resumes the study. Without --data, a small generated "
        "person/not-person set is used (said so in the output).",
        epilog=BUDGET_HELP,
    )
    a = p.add_argument
    a("--config", help="campaign YAML with any of these flags as keys")
    a("--space", help="space name in search_spaces/ or a YAML path (default mobilenet_v1)")
    a("--data", help="training data: a built VWW set, a person/non_person folder or a vww01 folder")
    a("--eval-data", help="the test set (default: the eval split of --data); the search selects on a seeded, "
      "stratified validation share of --data and only reports test accuracy")
    a("--study", help="study name (default demo)")
    a("--storage", help="Optuna storage URL (default: journal file results/<study>/study.journal)")
    a("--n-trials", type=int, help="trained candidates this run adds (with --supernet: scored ones); rejections do "
      "not count (default 4)")
    a("--timeout", help="stop starting new candidates after this long, e.g. 8h, 30m, 90s")
    a("--candidate-timeout", help="kill a candidate's training worker and fail the trial after this long, e.g. "
      "20m (default: 10x the expected training time from epochs, images and MACs, at least 10m)")
    a("--seed", type=int, help="sampler and training seed (default 0)")
    add_budget_flags(p, "default: the VWW paper's 250KB SRAM, 250KB flash, 60M MACs, or the board's")
    a("--objectives", help=f"comma list from {', '.join(DIRECTIONS)} (default accuracy,sram)")
    a("--sampler", choices=SAMPLERS, help="Optuna sampler (default tpe)")
    a("--pruner", choices=PRUNERS, help="epoch pruner, single accuracy objective only")
    a("--epochs", type=int, help="training epochs per candidate (default 3)")
    a("--halving", metavar="ETA", help="Pareto-aware successive halving (multi-objective studies): at each rung "
      "only candidates whose non-dominated rank (rung validation accuracy vs the cost objectives) is in the best "
      "1/ETA go on; rungs at epochs/ETA, epochs/ETA^2, ...")
    a("--rungs", help="the rungs as epochs instead, e.g. 1,3 (increasing, at most --epochs); implies --halving 3 "
      "unless --halving is given")
    a("--batch", type=int, help="batch size (default 32)")
    a("--qat-epochs", type=int, help="quantisation-aware fine-tuning epochs after training, for every candidate "
      "trained to its last epoch (paper schedule: 1e-5, x0.9 per epoch; default 0: none)")
    a("--recipe", choices=RECIPES, help="fast (Adam, cosine) or paper (RMSProp 0.9/0.9, lr 0.045 x0.98/epoch)")
    a("--max-rejections", type=int, help="stop after this many consecutive over-budget candidates (default 2000)")
    a("--results-dir", help="where results/<study>/ goes (default results)")
    a("--heartbeat", help="RDB storage heartbeat in whole seconds: a dead worker's trial fails after 2x and is "
      "queued again (journal files use a lease instead)")
    a("--demo-images", type=int, help="images in the generated set used without --data (default 800)")
    a("--no-export-winner", dest="export_winner", action="store_false", default=None,
      help="do not export the best trial at the end")
    a("--supernet", help="score candidates with weights inherited from this supernet file (`mcunas supernet train`) "
      "instead of training each; needs the --data and --seed it was trained with")
    a("--finalists", type=int, help="with --supernet: then train, export and test this many of the best scored "
      "candidates of the Pareto front (default 1)")
    a("--finalist-init", choices=FINALIST_INITS, help="with --supernet: finalists start from their inherited "
      "weights (supernet, the default) or from scratch")
    a("--json", action="store_true", help="print the run's figures as JSON")
    p.set_defaults(handler=run)


def parse_duration(text: str | None, flag: str = "--timeout") -> float | None:
    from mcunas.errors import UserError

    if text is None:
        return None
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([hms])", str(text).lower())
    if not parts or "".join(n + u for n, u in parts) != re.sub(r"\s", "", str(text).lower()):
        raise UserError(f"cannot read {flag} '{text}': write e.g. 8h, 30m, 90s or 1h30m")
    seconds = sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)
    if seconds <= 0:
        raise UserError(f"{flag} must be longer than 0, got '{text}'")
    return seconds


def parse_heartbeat(value) -> int | None:
    """``--heartbeat`` as whole seconds >= 1 (Optuna's RDB heartbeat takes an integer), or None."""
    from mcunas.errors import UserError

    if value is None:
        return None
    text = str(value).strip()
    if not text.isdigit() or int(text) < 1:
        raise UserError(f"--heartbeat must be a whole number of seconds, at least 1 (e.g. 10), got '{value}'")
    return int(text)


def merged_settings(args) -> dict:
    """Flags over config file over defaults."""
    from mcunas.errors import UserError
    from mcunas.yaml_input import read_yaml

    config = {}
    if args.config:
        config = read_yaml(args.config, f"--config {args.config}") or {}
        if not isinstance(config, dict):
            raise UserError(f"--config {args.config} must map flag names to values (e.g. 'epochs: 3'), "
                            f"got a {type(config).__name__}")
        config = {str(k).replace("-", "_"): v for k, v in config.items()}
        unknown = set(config) - set(DEFAULTS)
        if unknown:
            raise UserError(f"unknown key(s) in {args.config}: {', '.join(sorted(unknown))}")
        config = {k: _config_value(k, v, args.config) for k, v in config.items() if v is not None}
    return {k: getattr(args, k, None) if getattr(args, k, None) is not None else config.get(k, d)
            for k, d in DEFAULTS.items()}


def _config_value(key: str, value, path: str):
    """A config value in the type its flag has: a whole number, true/false, or one word or number as text.

    The flags' own checks (ranges, units, choices) then read it as they read the command line.
    """
    from mcunas.errors import UserError

    default = DEFAULTS[key]
    if isinstance(default, bool):
        if type(value) is not bool:
            raise UserError(f"{key} in --config {path} must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if type(value) is not int:
            raise UserError(f"{key} in --config {path} must be a whole number, got {value!r}")
        return value
    if type(value) not in (str, int, float):
        raise UserError(f"{key} in --config {path} must be one value (text or a number), got {value!r}")
    choices = _choices().get(key)
    if choices and str(value) not in choices:
        raise UserError(f"{key} in --config {path} must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _choices() -> dict:
    """The flags argparse restricts to a list; a config file gets the same lists."""
    from mcunas.cost.tflm_arena import MEMORY_PLANS
    from mcunas.search.objectives import PRUNERS, SAMPLERS
    from mcunas.search.supernet import FINALIST_INITS
    from mcunas.train.recipes import RECIPES

    return {"sampler": SAMPLERS, "pruner": PRUNERS, "recipe": RECIPES, "memory_plan": MEMORY_PLANS,
            "finalist_init": FINALIST_INITS}


def run(args) -> int:
    from argparse import Namespace

    from mcunas.budget import PAPER_BUDGET
    from mcunas.cli.flags import budget_from_args
    from mcunas.errors import UserError
    from mcunas.search.campaign import Campaign, run_campaign
    from mcunas.search.halving import parse_halving
    from mcunas.search.objectives import check_pruner, parse_objectives
    from mcunas.search.storage import check_study_name, default_storage_url
    from mcunas.spaces import load_space

    s = merged_settings(args)
    check_study_name(s["study"])
    for key in ("n_trials", "epochs", "batch"):
        if int(s[key]) < 1:
            raise UserError(f"--{key.replace('_', '-')} must be at least 1, got {s[key]}")
    if int(s["qat_epochs"]) < 0:
        raise UserError(f"--qat-epochs must be 0 (no quantisation-aware fine-tuning) or more, got {s['qat_epochs']}")
    heartbeat_s = parse_heartbeat(s["heartbeat"])
    timeout_s = parse_duration(s["timeout"])
    candidate_timeout_s = parse_duration(s["candidate_timeout"], "--candidate-timeout")
    budget = budget_from_args(Namespace(**s), defaults=PAPER_BUDGET)
    space = load_space(s["space"])
    results_dir = Path(s["results_dir"])
    objectives = parse_objectives(s["objectives"])
    check_pruner(s["pruner"], objectives)
    halving = parse_halving(s["halving"], s["rungs"], int(s["epochs"]), objectives, s["pruner"])
    _check_supernet_flags(s, space, objectives)
    data = s["data"]
    if "accuracy" not in objectives:
        data = None  # cost-only objectives never train
    elif data is None:
        data = _demo_data(results_dir / s["study"] / "demo_data", int(s["demo_images"]), int(s["seed"]))
    for flag, path in (("--data", data), ("--eval-data", s["eval_data"])):
        if path and not Path(path).exists():
            raise UserError(f"{flag} {path} does not exist: give a built VWW set, a person/non_person "
                            "folder or a vww01 folder")
    campaign = Campaign(
        space=space, study_name=s["study"],
        storage_url=s["storage"] or default_storage_url(s["study"]).replace("results/", f"{results_dir}/", 1),
        budget=budget, objectives=objectives, sampler=s["sampler"], pruner=s["pruner"],
        data=data and str(data), eval_data=s["eval_data"], n_trials=int(s["n_trials"]),
        timeout_s=timeout_s, seed=int(s["seed"]), epochs=int(s["epochs"]),
        batch=int(s["batch"]), recipe=s["recipe"], max_consecutive_rejections=int(s["max_rejections"]),
        results_dir=results_dir, heartbeat_s=heartbeat_s,
        candidate_timeout_s=candidate_timeout_s, halving=halving, qat_epochs=int(s["qat_epochs"]),
        supernet=s["supernet"], finalists=int(s["finalists"]) if s["supernet"] else 0,
        finalist_init=s["finalist_init"],
    )
    if campaign.needs_training:
        campaign.data_figures = _check_data(campaign)
    figures = run_campaign(campaign)
    if s["export_winner"] and campaign.needs_training and (campaign.finalists or not campaign.supernet):
        figures["winner"] = _export_winner(campaign)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print("\n".join(final_lines(s["study"], figures)))
    return 0


def _check_supernet_flags(s: dict, space, objectives: list[str]) -> None:
    """``--supernet`` and its companions, checked before anything is written (mcunas.search.supernet)."""
    from mcunas.errors import UserError
    from mcunas.search.supernet import check_supernet

    if s["supernet"] is None:
        if s["finalists"] != DEFAULTS["finalists"] or s["finalist_init"] != DEFAULTS["finalist_init"]:
            raise UserError("--finalists and --finalist-init need --supernet: an ordinary search trains every "
                            "candidate already")
        return
    if "accuracy" not in objectives:
        raise UserError("--supernet scores accuracy: keep accuracy in --objectives")
    if s["data"] is None:
        raise UserError("--supernet needs --data: the data the supernet was trained on")
    if s["halving"] is not None or s["rungs"] is not None:
        raise UserError("--supernet scores candidates without training them: leave out --halving/--rungs")
    if int(s["finalists"]) < 0:
        raise UserError(f"--finalists must be 0 (none) or more, got {s['finalists']}")
    if Path(s["data"]).exists():
        check_supernet(s["supernet"], space, s["data"], int(s["seed"]))


def final_lines(study: str, f: dict) -> list[str]:
    """The lines a search ends with: this run's counts apart from the study's totals, the winner, the files."""
    from mcunas.output import format_duration
    from mcunas.search.results import describe_winner, run_counts_text

    lines = [f"this run: {run_counts_text(f)} in {format_duration(f['elapsed_s'])}"
             + (f" ({f['candidates_per_s']:,} candidates/s)" if "candidates_per_s" in f else "")]
    totals = f.get("study_totals", {})
    lines.append(f"study {study}, all runs: " + ", ".join(f"{n} {s}" for s, n in totals.items()))
    if f.get("winner_trial"):
        lines.append(f"winner: {describe_winner(f['winner_trial'])}")
    if f.get("winner"):
        lines.append(f"exported to: {f['winner']}")
    for key, label in (("summary_md", "summary"), ("trials_csv", "trials"), ("pareto_csv", "pareto")):
        if f.get(key):
            lines.append(f"{label}: {f[key]}")
    if f.get("pngs"):
        lines.append("pngs: " + ", ".join(f["pngs"]))
    return lines


def _demo_data(folder: Path, n: int, seed: int) -> str:
    """Generate (once) the small synthetic person/not-person set used without --data.

    The notice goes to stderr: with ``--json``, stdout holds the JSON only.
    """
    from mcunas.data.synth import generated_at, is_synth_set, synthesize

    if not is_synth_set(folder):  # absent, or half-written by a version that wrote in place
        print(f"mcunas: no --data given: generating {n} synthetic person/not-person images in {folder} "
              "(procedural drawings, not photos; see README)", file=sys.stderr, flush=True)
        synthesize(folder, n=n, seed=seed)
    else:
        print(f"mcunas: no --data given: using the generated demo set in {folder} (generated {generated_at(folder)})",
              file=sys.stderr, flush=True)
    return str(folder)


def _check_data(c) -> dict:
    """Validate the data folders once (one line on the first problem), before any study is touched.

    Returns the figures the study records: test/validation/train sizes and
    ``majority_test_accuracy``.
    """
    from mcunas.data.check import check_search_data

    return check_search_data(c.data, c.eval_data, c.seed)


def _export_winner(c) -> str | None:
    """Export the best trained trial under the campaign's budget to results/<study>/winner/."""
    from mcunas.budget import Budget
    from mcunas.cli.export import export_study_trial
    from mcunas.cost.boards import load_boards
    from mcunas.query.pick import pick_best
    from mcunas.query.studies import load_study

    out = c.out_dir / "winner"
    study = load_study(c.study_name, c.storage_url)
    best = pick_best(study, Budget(model=c.budget.model, memory_plan=c.budget.memory_plan))
    print(f"mcunas: exporting the winner, trial {best.number}, to {out} (.keras, int8 .tflite, C array, TFLM arena)",
          file=sys.stderr, flush=True)
    export_study_trial(study, best, out, load_boards(), results_folder=c.out_dir, memory_plan=c.budget.memory_plan)
    return str(out)
