"""The `t2i-gcpo` command line. `main(argv)` is the entry point, callable from tests.

Commands: `train` (GCPO / GRPO / DAPO fine-tuning), `sample` (images from a policy), `eval`
(rewards, a judge's accuracy and where the credit falls, on a prompt set), `heatmap` (credit
maps of sampled images), `report` (an HTML page of a training run), `export` (a LoRA
checkpoint merged into a plain policy folder), `reward-server` (a reward
served over HTTP for the `remote` reward), and the commands that
installed plug-ins add through the entry-point group "t2i_gcpo.commands" (the shapes world
adds `toy build`). Input errors (a bad option, prompt file, reward or policy path, found before
any work starts, or a reward that fails during training) print `t2i-gcpo <command>: error: ...`
without a traceback and return exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from reward_models.base import RewardError
from reward_models.registry import PluginRegistry
from t2i_gcpo import __version__
from t2i_gcpo.files import atomic_path, write_text_atomic

USAGE_ERROR = 2
"""Exit status of a command whose input was rejected (as argparse uses)."""


class InputError(Exception):
    """Bad command-line input found before any work started; main() prints it, returns 2."""


COMMANDS = PluginRegistry("command", "t2i_gcpo.commands")
"""Sub-commands added by plug-ins: functions add(subparsers) that add a parser whose handler
(set with set_defaults(handler=...)) takes the parsed arguments and returns an exit status."""


# ---------------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------------

TRAIN_EPILOG = """\
Any config field can be set as --SECTION.FIELD VALUE (or --SECTION.FIELD=VALUE); VALUE is read
as YAML, so 0.28, true, null and [1, 2] work. Sections: policy, prompts, rollout, algo, rewards,
optim, reference, logging, checkpoint; plus --seed N. Run with --print-config to see every
field and its default; docs/training.md describes them.

examples:
  t2i-gcpo train                                   # GCPO on the shapes world (a few minutes)
  t2i-gcpo train --algo grpo --optim.steps 100 --logging.output_dir runs/grpo
  t2i-gcpo train --config my.yaml --rewards.models "[{name: oracle}]"
  t2i-gcpo train --logging.output_dir runs/grpo --resume
  accelerate launch --num_processes 8 -m t2i_gcpo.cli train --config janus.yaml
"""


def _add_train(commands) -> None:
    """`t2i-gcpo train`: RL fine-tuning from a config file and overrides."""
    train = commands.add_parser(
        "train",
        help="fine-tune a policy with GCPO, GRPO or DAPO",
        description="Fine-tune a policy with GCPO, GRPO or DAPO. Defaults: GCPO on the shapes "
        "world, rewarded by its oracle's partial credit, evaluated by its oracle's strict verdict.",
        epilog=TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    train.add_argument(
        "--config", metavar="FILE.yaml", help="YAML config file (sections as listed below)"
    )
    train.add_argument("--algo", metavar="NAME", help="algorithm preset: gcpo, grpo or dapo")
    train.add_argument(
        "--print-config", action="store_true", help="print the resolved config as YAML and exit"
    )
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in logging.output_dir from its latest checkpoint (its saved "
        "config.yaml is the base; options given here override it)",
    )
    train.add_argument(
        "--dry-run",
        action="store_true",
        help="print the per-GPU memory one step needs (parameters counted without loading any "
        "weights) and exit",
    )
    train.add_argument(
        "--processes", type=int, default=1, help="with --dry-run: processes (GPUs) of the run"
    )
    train.add_argument(
        "--zero-stage",
        type=int,
        default=0,
        choices=(0, 1, 2, 3),
        help="with --dry-run: ZeRO / FSDP sharding stage (1 optimizer, 2 + gradients, 3 + weights)",
    )
    train.set_defaults(handler=_run_train, takes_overrides=True)


def train_config(args: argparse.Namespace, overrides: Sequence[str]):
    """The TrainConfig of a `train` command line (its options and --section.field overrides)."""
    from t2i_gcpo.config import layered_config

    extra = list(overrides) + (["--algo.preset", args.algo] if args.algo else [])
    return layered_config(args.config, extra, resume=args.resume)


def _run_train(args: argparse.Namespace) -> int:
    config = train_config(args, args.overrides)
    if args.print_config:
        print(config.to_yaml(), end="")
        return 0
    if args.dry_run:
        from t2i_gcpo.memory import plan_report

        try:
            print(plan_report(config, args.processes, args.zero_stage))
        except (ValueError, OSError) as err:
            raise InputError(str(err)) from err
        return 0
    from t2i_gcpo.trainer import Trainer, TrainingStopped

    try:
        trainer = Trainer(config, resume=args.resume)
    except (ValueError, OSError) as err:
        raise InputError(str(err)) from err
    try:
        trainer.train()
    except TrainingStopped as err:
        raise InputError(str(err)) from err
    return 0


# ---------------------------------------------------------------------------------------------
# sample and eval
# ---------------------------------------------------------------------------------------------


def _add_policy_options(parser: argparse.ArgumentParser) -> None:
    """--policy, --cfg-scale, --seed, --device, --dtype shared by sample, eval and heatmap."""
    parser.add_argument(
        "--policy",
        default="shapes",
        help="a policy name, a folder saved by training (a checkpoint folder or its policy/), "
        "or a hub id (default: shapes)",
    )
    parser.add_argument(
        "--cfg-scale",
        type=float,
        default=None,
        help="classifier-free guidance scale (default: the policy's own, e.g. 1.0 for shapes)",
    )
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    parser.add_argument(
        "--dtype", default=None, choices=("float32", "bfloat16"), help="weights dtype"
    )


def _add_sample(commands) -> None:
    """`t2i-gcpo sample`: write PNGs of a policy's images for some prompts."""
    sample = commands.add_parser(
        "sample",
        help="sample images from a policy",
        description="Sample images for each --prompt and write them as PNGs to --out.",
    )
    _add_policy_options(sample)
    sample.add_argument(
        "--prompt", action="append", required=True, help="a prompt (repeat for more)"
    )
    sample.add_argument("--samples", type=int, default=4, help="images per prompt (default: 4)")
    sample.add_argument("--out", required=True, help="output folder")
    sample.set_defaults(handler=_run_sample)


def _add_eval(commands) -> None:
    """`t2i-gcpo eval`: rewards and shapes-oracle accuracy of a policy on a prompt set."""
    evaluate = commands.add_parser(
        "eval",
        help="score a policy on a prompt set",
        description="Sample every prompt, then report the mean of each --rewards and, with a "
        "--judge, its accuracy per prompt category (and their mean, the GenEval score), the "
        "objects it found beyond the prompt's an image (when it says how many it found, as "
        "shapes-oracle does) and where "
        "GCPO's credit falls on the objects it found: object AUROC, precision at K against its "
        "chance level, the localization ratio, and with a judge that can redraw an object "
        "wrongly (shapes-oracle) the blame test's AUROC, against each of --negatives.",
    )
    _add_policy_options(evaluate)
    evaluate.add_argument(
        "--prompts", required=True, help="prompt file (.jsonl / .txt) or prompt set (shapes:eval)"
    )
    evaluate.add_argument(
        "--judge",
        default=None,
        help="a reward with a judge() method, e.g. shapes-oracle for the shapes world's prompts",
    )
    evaluate.add_argument(
        "--samples-per-prompt", type=int, default=4, help="images per prompt (default: 4)"
    )
    evaluate.add_argument(
        "--rewards",
        nargs="+",
        default=[],
        metavar="REWARD",
        help="rewards to average: names or YAML mappings like '{name: clip, weight: 1}'",
    )
    evaluate.add_argument(
        "--negatives",
        nargs="+",
        default=["null", "caption", "attribute", "position"],
        choices=("null", "caption", "attribute", "position"),
        help="the negatives the credit figures are measured against (caption: when every "
        "prompt has one; attribute / position: prompts with GenEval metadata)",
    )
    evaluate.add_argument("--output-json", default=None, help="also write the results here")
    evaluate.set_defaults(handler=_run_eval)


def _add_heatmap(commands) -> None:
    """`t2i-gcpo heatmap`: where the credit goes, for a policy and some prompts."""
    from t2i_gcpo.algos import NEGATIVE_MODES, NORMALIZATIONS
    from t2i_gcpo.viz import UPSAMPLING

    heatmap = commands.add_parser(
        "heatmap",
        help="credit heatmaps of sampled images",
        description="Sample a group per prompt, score every token under the prompt and a "
        "negative, and write credit panels (image | credit | log p | log p negative | "
        "divergence), group grids, the raw numbers and an index.html gallery to --out. With "
        "--judge and prompts from a set or file with metadata, also the credit's object AUROC "
        "and precision at K on the objects the judge finds.",
    )
    _add_policy_options(heatmap)
    prompts = heatmap.add_mutually_exclusive_group(required=True)
    prompts.add_argument("--prompt", action="append", help="a prompt (repeat for more)")
    prompts.add_argument(
        "--prompts", help="a prompt file (.jsonl / .txt) or set (shapes:eval): its records"
    )
    heatmap.add_argument(
        "--limit", type=int, default=4, help="with --prompts: its first N records (default: 4)"
    )
    negative = heatmap.add_mutually_exclusive_group()
    negative.add_argument(
        "--negative",
        action="append",
        help="negative caption for the contrast (once for all prompts, or once per --prompt)",
    )
    negative.add_argument(
        "--negative-mode",
        choices=NEGATIVE_MODES,
        default=None,
        help="null: the null prompt (default); caption: each record's negative_prompt; swap: "
        "a colour or object word swapped; attribute: one thing the record's GenEval metadata "
        "names changed",
    )
    heatmap.add_argument("--samples", type=int, default=4, help="images per prompt (default: 4)")
    heatmap.add_argument(
        "--normalization",
        choices=NORMALIZATIONS,
        default="rank",
        help="credit normalization (default: rank, GCPO's)",
    )
    heatmap.add_argument(
        "--reward",
        default="shapes-clip",
        help="reward for the titles and advantages: a name or YAML mapping, or 'none' "
        "(default: shapes-clip)",
    )
    heatmap.add_argument(
        "--judge", default=None, help="a reward with a judge() method, e.g. shapes-oracle"
    )
    heatmap.add_argument("--alpha", type=float, default=0.6, help="overlay opacity (0..1)")
    heatmap.add_argument("--upsample", choices=UPSAMPLING, default="nearest")
    heatmap.add_argument("--out", required=True, help="output folder")
    heatmap.set_defaults(handler=_run_heatmap)


def _heatmap_records(args: argparse.Namespace):
    """The records of --prompt (with --negative) or of --prompts (its first --limit), and the
    classes and colours their "attribute" negatives draw on (of the whole --prompts set, so
    that a lone class's negative can name another; None: the records' own)."""
    from t2i_gcpo.data import resolve_prompts
    from t2i_gcpo.data.negatives import prompts_vocabulary
    from t2i_gcpo.viz.heatmap import heatmap_records

    if args.prompt:
        return heatmap_records(args.prompt, args.negative), None
    _positive("--limit", args.limit)
    every = resolve_prompts(args.prompts)
    records = every[: args.limit]
    if args.negative:
        return heatmap_records([r.prompt for r in records], args.negative), None
    return records, prompts_vocabulary(every)


def _run_heatmap(args: argparse.Namespace) -> int:
    from t2i_gcpo.algos import GCPO
    from t2i_gcpo.data import resolve_negatives
    from t2i_gcpo.viz.heatmap import run_heatmap

    _positive("--samples", args.samples)
    if not 0.0 <= args.alpha <= 1.0:
        raise InputError(f"--alpha must be in [0, 1], got {args.alpha}")
    mode = "caption" if args.negative else args.negative_mode or "null"
    try:
        records, vocab = _heatmap_records(args)
        resolve_negatives(records, mode, args.seed, source="the prompts", vocab=vocab)
    except ValueError as err:
        raise InputError(str(err)) from err
    reward = None if args.reward.lower() == "none" else _eval_reward([args.reward])
    judge = _eval_judge(args.judge)
    preset = GCPO.replace(normalization=args.normalization)
    policy = _load_policy(args)
    try:
        written = run_heatmap(
            policy,
            records,
            args.out,
            negative_mode=mode,
            samples=args.samples,
            preset=preset,
            cfg_scale=args.cfg_scale,
            seed=args.seed,
            reward=reward,
            alpha=args.alpha,
            mode=args.upsample,
            judge=judge,
            vocab=vocab,
        )
    except RewardError as err:
        raise InputError(str(err)) from err
    for path in written:
        print(path)
    print(f"open {Path(args.out) / 'index.html'} in a browser", file=sys.stderr)
    return 0


def _add_report(commands) -> None:
    """`t2i-gcpo report RUN_DIR`: one self-contained HTML page of a training run."""
    report = commands.add_parser(
        "report",
        help="write an HTML report of a training run",
        description="Write RUN_DIR/report.html: metric curves, held-out figures, first and last "
        "samples and the credit overlays over time, with every image inside the file.",
    )
    report.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by t2i-gcpo train")
    report.add_argument("--out", default=None, help="write the page here instead")
    report.set_defaults(handler=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    from t2i_gcpo.viz.html import write_report

    try:
        path = write_report(args.run_dir, args.out)
    except (ValueError, OSError) as err:
        raise InputError(str(err)) from err
    print(path)
    return 0


def _add_export(commands) -> None:
    """`t2i-gcpo export`: a LoRA checkpoint merged into a plain policy folder."""
    export = commands.add_parser(
        "export",
        help="merge a LoRA checkpoint's adapters into a plain policy folder",
        description="Load a policy (a LoRA checkpoint: its adapters over their base), fold the "
        "adapters into the weights and save a folder that from_pretrained, load_policy and "
        "every command load with no peft. A policy without adapters is saved as it is.",
    )
    export.add_argument("--policy", required=True, help="a checkpoint folder or its policy/")
    export.add_argument("--out", required=True, help="the folder to write")
    export.add_argument("--dtype", default=None, choices=("float32", "bfloat16"))
    export.set_defaults(handler=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from t2i_gcpo.policies import load_policy
    from t2i_gcpo.policies.lora import merge_adapters

    try:
        policy = load_policy(_policy_folder(args.policy), dtype=args.dtype, device="cpu")
    except (ValueError, OSError) as err:
        raise InputError(str(err)) from err
    merged = merge_adapters(policy) if getattr(policy, "adapter", None) is not None else policy
    print(merged.save(args.out))
    return 0


def _add_reward_server(commands) -> None:
    """`t2i-gcpo reward-server`: serve a reward over HTTP for remote scoring."""
    server = commands.add_parser(
        "reward-server",
        help="serve a reward over HTTP (the 'remote' reward scores through it)",
        description="Load a reward (a built-in, 'file.py:attr', 'module:attr' or a plug-in) and "
        "serve it: GET /health, POST /score (images as a safetensors document, prompts and "
        "metadata as JSON; nothing is unpickled). Requests that arrive together are scored in "
        "one batch on --device. Training scores through it with rewards.models: [{name: remote, "
        "kwargs: {url: http://HOST:PORT}}].",
    )
    server.add_argument("--reward", required=True, help="the reward to serve (a name)")
    server.add_argument(
        "--kwargs", default=None, help="its keyword arguments as a YAML mapping, e.g. '{scale: 50}'"
    )
    server.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")
    server.add_argument("--port", type=int, default=8765, help="port (0: a free one)")
    server.add_argument("--device", default=None, help="device the reward runs on (e.g. cuda:1)")
    server.add_argument(
        "--token",
        default=os.environ.get("T2I_GCPO_REWARD_TOKEN"),
        help="require 'Authorization: Bearer TOKEN' (default: $T2I_GCPO_REWARD_TOKEN); needed "
        "for any --host but loopback",
    )
    server.add_argument("--max-batch", type=int, default=64, help="images per reward call")
    server.add_argument(
        "--batch-window", type=float, default=0.005, help="seconds to wait for more requests"
    )
    server.add_argument("--max-images", type=int, default=256, help="images per request at most")
    server.add_argument("--max-side", type=int, default=1024, help="image side at most (pixels)")
    server.set_defaults(handler=_run_reward_server)


def _run_reward_server(args: argparse.Namespace) -> int:
    import inspect

    import yaml

    from reward_models.registry import load_reward, resolve_reward
    from reward_models.server import RewardService, announce, serve
    from reward_models.wire import Limits

    for name in ("max_batch", "max_images", "max_side"):
        _positive(f"--{name.replace('_', '-')}", getattr(args, name))
    try:
        kwargs = yaml.safe_load(args.kwargs) if args.kwargs else {}
        if not isinstance(kwargs, dict):
            raise InputError(f"--kwargs must be a YAML mapping, got {args.kwargs!r}")
        target = resolve_reward(args.reward)
        if args.device and "device" in inspect.signature(target).parameters:
            kwargs.setdefault("device", args.device)
        reward = load_reward(args.reward, **kwargs)
        limits = Limits(max_images=args.max_images, max_side=args.max_side)
        service = RewardService(
            reward, args.reward, limits, args.max_batch, args.batch_window, args.device
        )
        server = serve(service, args.host, args.port, args.token)
    except (ValueError, OSError, yaml.YAMLError) as err:
        raise InputError(str(err)) from err
    announce(server, args.reward)
    try:
        with stop_on_term():
            server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


@contextlib.contextmanager
def stop_on_term():
    """Turn SIGTERM into KeyboardInterrupt inside the block (a server stops the same way)."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _positive(name: str, value: int) -> None:
    """Raise InputError unless value >= 1."""
    if value < 1:
        raise InputError(f"{name} must be >= 1, got {value}")


def _policy_folder(name: str) -> str:
    """A checkpoint folder (holding policy/) stands for its policy; anything else is as given."""
    folder = Path(name).expanduser() / "policy"
    saved = (folder / "config.json").is_file() or (folder / "adapter_config.json").is_file()
    return str(folder) if saved else name


def _load_policy(args: argparse.Namespace):
    """The policy of --policy on --device, or InputError saying why it cannot be loaded."""
    import torch

    from t2i_gcpo.policies import load_policy

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return load_policy(_policy_folder(args.policy), dtype=args.dtype, device=device)
    except (ValueError, OSError) as err:
        raise InputError(str(err)) from err


def _run_sample(args: argparse.Namespace) -> int:
    import torch

    _positive("--samples", args.samples)
    if any(not prompt.strip() for prompt in args.prompt):
        raise InputError("--prompt must not be empty")
    policy = _load_policy(args)
    generator = torch.Generator(device=policy.device).manual_seed(args.seed)
    scale = policy.default_cfg_scale if args.cfg_scale is None else args.cfg_scale
    rollout = policy.sample(
        args.prompt, samples_per_prompt=args.samples, cfg_scale=scale, generator=generator
    )
    images = policy.decode(rollout.tokens)
    written = _write_images(images, rollout.prompt_index.tolist(), args.prompt, Path(args.out))
    print(f"wrote {len(written)} images to {args.out}")
    return 0


def _write_images(images, prompt_index: list[int], prompts: list[str], out: Path) -> list[Path]:
    """PNG per image, named p<prompt>_s<sample>.png, plus prompts.json listing the prompts."""
    from torchvision.utils import save_image

    out.mkdir(parents=True, exist_ok=True)
    written, counts = [], [0] * len(prompts)
    for image, index in zip(images, prompt_index, strict=True):
        path = out / f"p{index:03d}_s{counts[index]:02d}.png"
        with atomic_path(path) as partial:
            save_image(image, partial, format="png")
        counts[index] += 1
        written.append(path)
    write_text_atomic(out / "prompts.json", json.dumps(prompts, indent=2) + "\n")
    return written


def _eval_reward(specs: Sequence[str]):
    """A CombinedReward of the --rewards entries (each a name or a YAML mapping), or None."""
    import yaml

    from reward_models.combine import CombinedReward

    if not specs:
        return None
    try:
        return CombinedReward([yaml.safe_load(spec) for spec in specs])
    except (ValueError, OSError, yaml.YAMLError) as err:
        raise InputError(f"--rewards: {err}") from err


def _eval_judge(name: str | None):
    """The reward named by --judge, which must have a judge() method, or None."""
    from reward_models import Judge, load_reward

    if name is None:
        return None
    try:
        judge = load_reward(name)
    except (ValueError, OSError) as err:
        raise InputError(f"--judge: {err}") from err
    if not isinstance(judge, Judge):
        raise InputError(f"--judge {name!r} is a reward without a judge() method")
    return judge


def _run_eval(args: argparse.Namespace) -> int:
    from reward_models import RewardError
    from t2i_gcpo.data import resolve_prompts
    from t2i_gcpo.evaluation import evaluate_policy

    _positive("--samples-per-prompt", args.samples_per_prompt)
    try:
        records = resolve_prompts(args.prompts)
    except (ValueError, OSError) as err:
        raise InputError(str(err)) from err
    reward, judge = _eval_reward(args.rewards), _eval_judge(args.judge)
    if reward is None and judge is None:
        raise InputError("give --rewards, --judge or both (e.g. --judge shapes-oracle)")
    policy = _load_policy(args)
    n = args.samples_per_prompt
    results: dict = {"policy": args.policy, "prompts": args.prompts, "samples_per_prompt": n}
    try:
        figures = evaluate_policy(
            policy,
            records,
            n,
            args.cfg_scale,
            reward=reward,
            judge=judge,
            negative_views=args.negatives,
            seed=args.seed,
        )
    except RewardError as err:
        raise InputError(str(err)) from err
    for prefix, name in (
        ("oracle", "judge_accuracy"),
        ("objects", "objects"),
        ("reward", "rewards"),
    ):
        chosen = {k.split("/", 1)[1]: v for k, v in figures.items() if k.startswith(prefix + "/")}
        if chosen:
            results[name] = chosen
    credit: dict = {}
    for key, value in figures.items():
        if key.startswith("credit/"):
            _, view, name = key.split("/")
            credit.setdefault(view, {})[name] = value
    if credit:
        results["credit"] = credit
    text = json.dumps(results, indent=2)
    print(text)
    if args.output_json:
        write_text_atomic(Path(args.output_json), text + "\n")
    return 0


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one sub-command per job."""
    parser = argparse.ArgumentParser(
        prog="t2i-gcpo",
        description="RL fine-tuning (GCPO, GRPO, DAPO) of autoregressive image-token models.",
    )
    parser.add_argument("--version", action="version", version=f"t2i-gcpo {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_train(commands)
    _add_sample(commands)
    _add_eval(commands)
    _add_heatmap(commands)
    _add_report(commands)
    _add_export(commands)
    _add_reward_server(commands)
    for name in COMMANDS.names():
        COMMANDS.get(name)(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `t2i-gcpo` with `argv` (default: sys.argv[1:]); returns the exit status."""
    from transformers.utils import logging as transformers_logging

    from t2i_gcpo.config import ConfigError

    parser = build_parser()
    args, extras = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    if args.command is None:
        parser.print_help()
        return 0
    if extras and not getattr(args, "takes_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    args.overrides = extras
    transformers_logging.disable_progress_bar()  # no bars for loading / saving tiny checkpoints
    try:
        return args.handler(args)
    except (InputError, ConfigError) as err:
        print(f"t2i-gcpo {args.command}: error: {err}", file=sys.stderr)
        return USAGE_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
