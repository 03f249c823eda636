"""The ``drive-sim`` command: ``train``, ``evaluate``, ``replay``, ``bench``, ``perf``, ``collect``, ``perception`` and ``scenarios``.

Argument parsing only; the work is done by functions in the packages. Bad input ends with one
line naming what to fix and exit status 2. (argparse rather than tyro, which STYLE.md suggests:
tyro prints a multi-line panel on bad input, and the project promises one clear line.)
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

AGENT_HELP = (
    "zoo:NAME, a model file (.zip: drive-sim's or SB3's; .npz; .json), an rl-zoo3 run folder, "
    "module:attr or file.py:attr (an object with act(obs)), expert or random"
)
PICKLE_HELP = "load agents whose files run code when loaded: standard SB3 zips and rl-zoo3 run folders (only files you trust)"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _build() -> argparse.ArgumentParser:
    from agents.reports.perf import PerfConfig
    from agents.training.config import TrainConfig
    from drive_sim.render import VideoConfig

    t, p, v = TrainConfig(), PerfConfig(), VideoConfig()
    root = _Parser(prog="drive-sim", description="Driving RL on a PyBullet world.")
    sub = root.add_subparsers(dest="command", required=True, parser_class=_Parser)

    tr = sub.add_parser("train", help="train an agent and write a run folder (or continue one with --resume)")
    tr.add_argument("--config", default=None, help="YAML config (train, hyperparams, policy, env); default: the shipped one, if any")
    tr.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    tr.add_argument("--scenario", default=None, help=f"scenario name or DriveSim id (default {t.scenario})")
    tr.add_argument("--algo", default=None, help=f"ppo, dqn, sac or q (tabular Q-learning) (default {t.algo})")
    tr.add_argument("--obs", default=None, help=f"lidar, camera, multi or kinematics (default {t.obs})")
    tr.add_argument("--action", default=None, help=f"continuous, discrete or meta (default {t.action})")
    tr.add_argument("--total-steps", type=int, default=None, help="environment steps (default: the config's)")
    tr.add_argument("--n-envs", type=int, default=None, help="parallel environments, subprocesses when > 1 (default: the config's)")
    tr.add_argument("--seed", type=int, default=None, help=f"run seed (default {t.seed})")
    tr.add_argument("--eval-episodes", type=int, default=None, help="final test episodes on seeds 0.. (default: the config's)")
    tr.add_argument("--out-dir", default=None, help=f"where run folders go (default {t.out_dir})")
    tr.add_argument("--name", default=None, help="run folder name (default <scenario>-<algo>-<obs>-s<seed>)")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar")

    ev = sub.add_parser("evaluate", help="run an agent on test seeds and print its scores")
    ev.add_argument("--agent", required=True, help=AGENT_HELP)
    ev.add_argument("--allow-pickle", action="store_true", help=PICKLE_HELP)
    ev.add_argument("--scenario", default=None, help="scenario name or DriveSim id (default: the env the agent was trained on)")
    ev.add_argument("--episodes", type=int, default=20, help="episodes (default 20)")
    ev.add_argument("--seed-start", type=int, default=0, help="first seed (default 0; test seeds are 0-99)")
    ev.add_argument("--out", default=None, help="write the episodes and summary as JSON here (never over an existing file)")
    ev.add_argument("--no-progress", action="store_true", help="no progress bar")

    rp = sub.add_parser(
        "replay",
        help="film an agent's episode (--agent) or a recorded episode (LOG) as mp4 or GIF",
        description="drive-sim replay --agent zoo:NAME --scenario S --seed N --out x.mp4 | drive-sim replay LOG_DIR --out x.mp4",
    )
    rp.add_argument("log", nargs="?", default=None, help="an episode log folder (runs/.../episodes/ep_0007)")
    rp.add_argument("--agent", default=None, help=AGENT_HELP)
    rp.add_argument("--allow-pickle", action="store_true", help=PICKLE_HELP)
    rp.add_argument("--scenario", default=None, help="scenario name or DriveSim id (default: the env the agent was trained on)")
    rp.add_argument("--seed", type=int, default=0, help="episode seed (default 0)")
    rp.add_argument("--out", required=True, help="the video: .mp4 (H.264, plays in browsers) or .gif; its folder is created")
    rp.add_argument("--force", action="store_true", help="replace an existing video")
    rp.add_argument("--record", default=None, metavar="DIR", help="with --agent: also write the episode log into DIR")
    rp.add_argument("--max-steps", type=int, default=None, help="with --agent: stop filming after this many steps")
    rp.add_argument("--mode", default="auto", help="for a log: auto, resimulate or playback (default auto)")
    rp.add_argument("--width", type=int, default=v.width, help=f"frame width (default {v.width})")
    rp.add_argument("--height", type=int, default=v.height, help=f"frame height (default {v.height})")
    rp.add_argument("--panels", default=",".join(v.panels), help=f"comma-separated panels (default {','.join(v.panels)})")
    rp.add_argument("--fps", type=float, default=v.fps, help="frames per second (default: real time)")
    rp.add_argument(
        "--perception",
        nargs="?",
        const="shipped",
        default=None,
        metavar="MODEL",
        help="film the camera panel through a perception net: its segmentation over the frame, predicted vs true (default net: shipped)",
    )
    rp.add_argument("--no-progress", action="store_true", help="no progress bar")

    bn = sub.add_parser("bench", help="run agents x scenarios x seeds; one row per episode in OUT/episodes.csv (resumable)")
    bn.add_argument("--agents", required=True, help="comma-separated: " + AGENT_HELP)
    bn.add_argument("--allow-pickle", action="store_true", help=PICKLE_HELP)
    bn.add_argument("--scenarios", default="all", help="comma-separated names or ids, or all (default all)")
    bn.add_argument("--episodes", type=int, default=50, help="seeds per scenario (default 50)")
    bn.add_argument("--seed-start", type=int, default=0, help="first seed (default 0; test seeds are 0-99)")
    bn.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: all cores)")
    bn.add_argument("--out", default="results", help="output folder (default results); a re-run finishes what is missing")
    bn.add_argument("--backend", default="local", choices=("local", "ray"), help="local process pool (default) or Ray tasks")
    bn.add_argument("--address", default=None, help="Ray cluster to join (auto, ray://HOST:10001); default: start Ray here")
    bn.add_argument("--videos", type=int, default=0, metavar="K", help="film the K worst episodes of each agent and scenario")
    bn.add_argument("--no-progress", action="store_true", help="no progress bar")

    pf = sub.add_parser("perf", help="measure throughput and memory, write docs/performance.md")
    pf.add_argument("--repeats", type=int, default=p.repeats, help=f"repeats per figure (default {p.repeats})")
    pf.add_argument(
        "--memory-steps", type=int, default=p.memory_steps, help=f"steps of the memory check, 0 to skip (default {p.memory_steps})"
    )
    pf.add_argument("--cpu", type=int, default=p.cpu, help=f"core to pin to, -1 for none (default {p.cpu})")
    pf.add_argument("--out", default="", help="write the report here (docs/performance.md is the committed page); default: print only")
    pf.add_argument("--quick", action="store_true", help="tiny sizes for a smoke run")
    pf.add_argument("--no-progress", action="store_true", help="no progress bar")

    from agents.datasets.collect import CollectConfig

    c = CollectConfig()
    co = sub.add_parser("collect", help="collect a labelled camera dataset from the world's ground truth (resumable)")
    co.add_argument("--scenarios", default="all", help="comma-separated names or ids, or all (default all)")
    co.add_argument("--episodes", type=int, default=c.episodes, help=f"episodes in all, over the scenarios in turn (default {c.episodes})")
    co.add_argument("--out", required=True, help="dataset folder; a re-run of the same command finishes an interrupted collection")
    co.add_argument("--sizes", default=",".join(map(str, c.sizes)), help="camera sizes in px, comma-separated (default 84)")
    co.add_argument("--seed", type=int, default=c.seed, help=f"collection seed (default {c.seed})")
    co.add_argument("--holdout", default=c.holdout, help=f"scenario kept out of train/val/test (default {c.holdout}; '' for none)")
    co.add_argument("--every", type=int, default=c.every, help=f"keep every N-th control step (default {c.every})")
    co.add_argument("--max-steps", type=int, default=c.max_steps, help=f"control steps per episode at most (default {c.max_steps})")
    co.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: all cores)")
    co.add_argument("--no-progress", action="store_true", help="no progress bar")

    from agents.datasets.perception_train import PerceptionTrainConfig
    from perception.names import LEAD_HEADS

    pt = PerceptionTrainConfig()
    pe = sub.add_parser("perception", help="train and evaluate the camera perception net")
    psub = pe.add_subparsers(dest="perception_command", required=True, parser_class=_Parser)
    ptr = psub.add_parser("train", help="train the multi-task net on a collected dataset (a run folder; --resume continues one)")
    ptr.add_argument("--data", default=None, help="dataset folder (drive-sim collect --out)")
    ptr.add_argument("--resume", default=None, metavar="RUN", help="continue an interrupted run folder")
    ptr.add_argument("--size", type=int, default=pt.size, help=f"frame size in px (default {pt.size})")
    ptr.add_argument("--tasks", default=",".join(pt.tasks), help="heads to train, comma-separated (default all four)")
    ptr.add_argument("--weighting", default=pt.weighting, choices=("fixed", "uncertainty"), help="task loss weights (default fixed)")
    ptr.add_argument(
        "--reg-beta", type=float, default=pt.reg_beta, help=f"regression smooth-L1 turning point in std devs (default {pt.reg_beta})"
    )
    ptr.add_argument(
        "--lead-head",
        default=pt.lead_head,
        choices=("auto", *LEAD_HEADS),
        help="how the lead's gap is read: fc (the feature vector), ground (a heat map over the full-resolution decoder), "
        "ground-half (the same over its half-resolution stage: the driving heads skip the last stage), "
        "auto (ground-half where the net has the regression and segmentation heads, else fc; the default)",
    )
    ptr.add_argument("--epochs", type=int, default=pt.epochs, help=f"epochs (default {pt.epochs})")
    ptr.add_argument("--batch-size", type=int, default=pt.batch_size, help=f"batch size (default {pt.batch_size})")
    ptr.add_argument("--lr", type=float, default=pt.lr, help=f"learning rate (default {pt.lr})")
    ptr.add_argument("--label-fraction", type=float, default=pt.label_fraction, help="share of training episodes with labels (default 1)")
    ptr.add_argument("--encoder", default="", help="start the encoder from this net file or a pre-training run's encoder.pt")
    ptr.add_argument("--steps", type=int, default=0, help="a fixed budget of optimiser steps over the epochs (default 0: full passes)")
    ptr.add_argument("--seed", type=int, default=pt.seed, help=f"seed (default {pt.seed})")
    ptr.add_argument("--out-dir", default=pt.out_dir, help=f"where run folders go (default {pt.out_dir})")
    ptr.add_argument("--name", default="", help="run folder name (default perception-s<seed>)")
    ptr.add_argument("--no-progress", action="store_true", help="no progress bar")
    pev = psub.add_parser("eval", help="the error table per task, split, scenario and weather, beside the trivial baseline")
    pev.add_argument("--model", default=None, help="a run's model.pt (default: the net shipped in the package)")
    pev.add_argument("--data", required=True, help="dataset folder")
    pev.add_argument("--out", default="", help="write the table here (.md, .json, or both without a suffix)")
    from agents.datasets.perception_pretrain import PretrainConfig

    pp = PretrainConfig()
    ppr = psub.add_parser("pretrain", help="self-supervised pre-training of the encoder on unlabelled frames (masked reconstruction)")
    ppr.add_argument("--data", default=None, help="dataset folder (its training split's frames; labels are not read)")
    ppr.add_argument("--resume", default=None, metavar="RUN", help="continue an interrupted pre-training run folder")
    ppr.add_argument("--size", type=int, default=pp.size, help=f"frame size in px (default {pp.size})")
    ppr.add_argument("--epochs", type=int, default=pp.epochs, help=f"epochs (default {pp.epochs})")
    ppr.add_argument("--batch-size", type=int, default=pp.batch_size, help=f"batch size (default {pp.batch_size})")
    ppr.add_argument("--lr", type=float, default=pp.lr, help=f"learning rate (default {pp.lr})")
    ppr.add_argument("--mask-ratio", type=float, default=pp.mask_ratio, help=f"share of each frame blanked (default {pp.mask_ratio})")
    ppr.add_argument("--patch", type=int, default=pp.patch, help=f"side of a blanked square in px (default {pp.patch})")
    ppr.add_argument("--seed", type=int, default=pp.seed, help=f"seed (default {pp.seed})")
    ppr.add_argument("--out-dir", default=pp.out_dir, help=f"where run folders go (default {pp.out_dir})")
    ppr.add_argument("--name", default="", help="run folder name (default pretrain-s<seed>)")
    ppr.add_argument("--no-progress", action="store_true", help="no progress bar")
    pco = psub.add_parser("compress", help="int8 quantisation, channel pruning and distillation of a net, each scored and timed")
    pco.add_argument("--model", required=True, help="the float32 net (a perception run's model.pt)")
    pco.add_argument("--data", required=True, help="its dataset folder (training frames calibrate and distil, test frames score)")
    pco.add_argument("--out", required=True, help="output folder (ONNX files, pruned and student nets, compress.json, compress.md)")
    pco.add_argument("--keep", type=float, default=0.5, help="share of each layer's channels the pruned net keeps (default 0.5)")
    pco.add_argument("--epochs", type=int, default=4, help="distillation epochs of the pruned net (default 4)")
    pco.add_argument("--student-epochs", type=int, default=4, help="distillation epochs of the student (default 4)")
    pco.add_argument(
        "--reg-beta",
        type=float,
        default=0.0,
        help="smooth-L1 turning point of the distillation's regression terms (default 0: the teacher's own, from its file)",
    )
    pco.add_argument("--repeats", type=int, default=5, help="latency repeats; the median is reported (default 5)")
    pco.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    pco.add_argument("--force", action="store_true", help="overwrite a folder that holds a previous compression run")
    pco.add_argument("--no-progress", action="store_true", help="no progress bar")

    fu = sub.add_parser("fusion", help="localisation and tracking figures of the perceived observation against the truth")
    fu.add_argument("--scenarios", default="highway,lanekeep", help="comma-separated names or ids (default highway,lanekeep)")
    fu.add_argument("--episodes", type=int, default=50, help="seeds per scenario (default 50)")
    fu.add_argument("--seed-start", type=int, default=0, help="first seed (default 0; test seeds are 0-99)")
    fu.add_argument("--agent", default="expert", help="the agent that drives on perceived (default expert)")
    fu.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: all cores)")
    fu.add_argument("--out", default="fusion", help="output folder for fusion.json, fusion.md, fusion.png (default fusion)")
    fu.add_argument("--no-progress", action="store_true", help="no progress bar")
    sub.add_parser("scenarios", help="list the scenario library")
    return root


def _perception(args: argparse.Namespace) -> int:
    if args.perception_command == "train":
        from agents.datasets.perception_train import PerceptionTrainConfig, train_perception

        if args.resume:
            run = train_perception(PerceptionTrainConfig(), resume=args.resume, progress=not args.no_progress)
        else:
            if not args.data:
                raise ValueError("data: give the dataset folder (--data DIR), or --resume RUN")
            cfg = PerceptionTrainConfig(
                data=args.data,
                size=args.size,
                tasks=tuple(t.strip() for t in args.tasks.split(",") if t.strip()),
                weighting=args.weighting,
                reg_beta=args.reg_beta,
                lead_head=args.lead_head,
                epochs=args.epochs,
                batch_size=args.batch_size,
                lr=args.lr,
                label_fraction=args.label_fraction,
                encoder=args.encoder,
                steps=args.steps,
                seed=args.seed,
                out_dir=args.out_dir,
                name=args.name,
            )
            run = train_perception(cfg, progress=not args.no_progress)
        print(f"run: {run}  model: {run / 'model.pt'}  test: {run / 'test.json'}")
        return 0
    if args.perception_command == "pretrain":
        from agents.datasets.perception_pretrain import PretrainConfig, pretrain

        if args.resume:
            run = pretrain(PretrainConfig(), resume=args.resume, progress=not args.no_progress)
        else:
            if not args.data:
                raise ValueError("data: give the dataset folder (--data DIR), or --resume RUN")
            pcfg = PretrainConfig(
                data=args.data,
                size=args.size,
                epochs=args.epochs,
                batch_size=args.batch_size,
                lr=args.lr,
                mask_ratio=args.mask_ratio,
                patch=args.patch,
                seed=args.seed,
                out_dir=args.out_dir,
                name=args.name,
            )
            run = pretrain(pcfg, progress=not args.no_progress)
        print(f"run: {run}  encoder: {run / 'encoder.pt'} (perception train --encoder {run / 'encoder.pt'})")
        return 0
    if args.perception_command == "compress":
        from agents.datasets import perception_compress as pc

        cfg = pc.CompressConfig(
            model=args.model,
            data=args.data,
            out=args.out,
            keep=args.keep,
            epochs=args.epochs,
            student_epochs=args.student_epochs,
            reg_beta=args.reg_beta,
            repeats=args.repeats,
            seed=args.seed,
            force=args.force,
        )
        res = pc.compress(cfg, progress=not args.no_progress)
        print(pc.markdown(res))
        return 0
    from agents.datasets.perception_eval import markdown, perception_eval

    result = perception_eval(args.model, args.data, out=args.out or None)
    print(markdown(result))
    return 0


def _collect(args: argparse.Namespace) -> int:
    from agents.datasets.collect import CollectConfig, collect

    try:
        sizes = tuple(int(x) for x in args.sizes.split(",") if x.strip())
    except ValueError:
        raise ValueError(f"sizes: {args.sizes!r} is not a comma-separated list of sizes in px (e.g. 84,128)") from None
    cfg = CollectConfig(
        scenarios=tuple(x.strip() for x in args.scenarios.split(",") if x.strip()),
        episodes=args.episodes,
        seed=args.seed,
        sizes=sizes,
        every=args.every,
        max_steps=args.max_steps,
        holdout=args.holdout,
    )
    manifest = collect(cfg, args.out, workers=args.workers, progress=not args.no_progress)
    frames = manifest["frames"]
    print(f"dataset: {args.out}  frames " + "  ".join(f"{k} {v:,}" for k, v in frames.items()))
    return 0


_TRAIN_KEYS = ("scenario", "algo", "obs", "action", "total_steps", "n_envs", "seed", "eval_episodes", "out_dir", "name")


def _say(message: str) -> None:
    """A phase line on stdout, above any progress bar (tqdm redraws it below)."""
    from tqdm import tqdm

    tqdm.write(message, file=sys.stdout)


def _train(args: argparse.Namespace) -> int:
    from agents.training.config import resolve_config
    from agents.training.trainer import TrainingInterrupted, resume, train

    try:
        if args.resume is not None:
            given = [f"--{k.replace('_', '-')}" for k in _TRAIN_KEYS if getattr(args, k) is not None]
            if given or args.config is not None:
                raise ValueError(
                    f"resume: a resumed run keeps its own config; drop {', '.join(given + (['--config'] if args.config else []))}"
                )
            run = resume(args.resume, progress=not args.no_progress, say=_say)
        else:
            overrides = {k: getattr(args, k) for k in _TRAIN_KEYS if getattr(args, k) is not None}
            run_cfg, source = resolve_config(overrides, args.config)
            run = train(run_cfg, source=source, progress=not args.no_progress, say=_say)
    except TrainingInterrupted as stop:
        print(f"drive-sim: {stop}", file=sys.stderr)
        return 130
    print(f"run folder: {run}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from agents.evaluation.episodes import evaluate_named_agent
    from agents.evaluation.metrics import run_scores
    from drive_sim.files import check_writable, write_json

    out = Path(args.out) if args.out else None
    if out is not None and out.exists():
        raise ValueError(f"out: {out} exists; drive-sim never overwrites results, choose another path")
    if out is not None:
        check_writable(out)  # before the episodes run, not after
    episodes, what = evaluate_named_agent(
        args.agent,
        scenario=args.scenario,
        episodes=args.episodes,
        seed_start=args.seed_start,
        progress=not args.no_progress,
        allow_pickle=args.allow_pickle,
    )
    rows = [e.brief() for e in episodes]
    summary = run_scores(rows)
    last = args.seed_start + args.episodes - 1
    print(f"{what['agent']} on {what['env_id']} ({what['obs_type']}, {what['action_type']}), seeds {args.seed_start}-{last}")
    for key in ("success_rate", "collision_rate", "off_road_rate", "mean_route_completion", "mean_speed_ratio", "mean_return"):
        print(f"{key:24s} {summary[key]:10.3f}")
    if out is not None:
        write_json(out, {**what, "summary": summary, "episodes": rows})
        print(f"written: {out}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from agents.evaluation.bench import BenchConfig
    from agents.evaluation.bench_report import bench_and_report

    split = [a.strip() for a in args.agents.split(",") if a.strip()]
    scen = tuple(x.strip() for x in args.scenarios.split(",") if x.strip())
    cfg = BenchConfig(
        agents=tuple(split),
        scenarios=scen,
        episodes=args.episodes,
        seed_start=args.seed_start,
        workers=args.workers,
        out=args.out,
        backend=args.backend,
        address=args.address,
        allow_pickle=args.allow_pickle,
    )
    command = (
        f"drive-sim bench --agents {args.agents} --scenarios {args.scenarios} --episodes {args.episodes} --seed-start {args.seed_start}"
    )
    if args.videos:
        command += f" --videos {args.videos}"
    cells, report = bench_and_report(cfg, videos=args.videos, command=command, progress=not args.no_progress)
    width = max(len(c["agent"]) for c in cells)
    for c in cells:
        if c["status"] != "ok":
            print(f"{c['agent']:{width}s}  {c['env_id']:36s}  skipped: {c['reason']}")
            continue
        lo, hi = c["driving_score_ci"]
        print(
            f"{c['agent']:{width}s}  {c['env_id']:36s}  success {c['success_rate']:6.1%}  "
            f"driving score {c['driving_score']:.3f} [{lo:.3f}, {hi:.3f}]  ({c['episodes']} episodes)"
        )
    print(f"rows: {Path(args.out) / 'episodes.csv'}; summary: {Path(args.out) / 'summary.json'}; report: {report}")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from agents.evaluation.replay import film_agent, film_log
    from drive_sim.render import VideoConfig

    if (args.log is None) == (args.agent is None):
        raise ValueError("replay: give either an episode log folder or --agent (not both)")
    panels = tuple(p.strip() for p in args.panels.split(",") if p.strip())
    video = VideoConfig(width=args.width, height=args.height, panels=panels, fps=args.fps)
    progress = not args.no_progress
    try:
        if args.agent is not None:
            res = film_agent(
                args.agent,
                args.out,
                scenario=args.scenario,
                seed=args.seed,
                video=video,
                record_dir=args.record,
                max_steps=args.max_steps,
                force=args.force,
                progress=progress,
                allow_pickle=args.allow_pickle,
                perception=args.perception,
            )
        else:
            if args.record is not None:
                raise ValueError("record: only with --agent (a log is already recorded)")
            res = film_log(args.log, args.out, video=video, mode=args.mode, force=args.force, progress=progress, perception=args.perception)
    except FileExistsError as err:
        raise ValueError(str(err)) from None
    outcome = ("success" if res.success else "no success") if res.finished else "unfinished (stopped before the episode ended)"
    print(f"written: {res.video} ({res.frames} frames, {res.fps:g} frames/s, {res.size[0]}x{res.size[1]})")
    print(f"episode: {res.steps} steps, return {res.total_return:.2f}, {outcome}")
    if res.mode is not None:
        print(f"filmed by {res.mode}" + (f"; re-simulation: {res.mismatch}" if res.mismatch else ""))
    if res.log is not None and args.agent is not None:
        print(f"episode log: {res.log}")
    return 0


def one_line(err: BaseException) -> str:
    """What went wrong, in one line that names the file where there is one."""
    if isinstance(err, RecursionError):
        return "input nested too deeply to read"
    if isinstance(err, UnicodeDecodeError):
        return f"a file is not UTF-8 text ({err.reason} at byte {err.start})"
    if isinstance(err, OSError) and err.strerror:
        where = f"{err.filename}: " if err.filename else ""
        return f"{where}{err.strerror}"
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``drive-sim`` command."""
    from gymnasium.error import Error as GymError

    from drive_sim.config import ConfigError

    args = _build().parse_args(argv)
    try:
        if args.command == "train":
            return _train(args)
        elif args.command == "evaluate":
            return _evaluate(args)
        elif args.command == "replay":
            return _replay(args)
        elif args.command == "bench":
            return _bench(args)
        elif args.command == "perf":
            from agents.reports.perf import QUICK, PerfConfig, ratio_text, run_perf

            sizes = QUICK if args.quick else {}
            cfg = PerfConfig(**{"repeats": args.repeats, "memory_steps": args.memory_steps, "cpu": args.cpu, "out": args.out, **sizes})
            res = run_perf(cfg, progress=not args.no_progress)
            for key, value in res.rates.items():
                print(f"{key:32s} {value:12,.1f} /s")
            for key, value in res.ratios.items():
                print(f"{key:32s} {ratio_text(value):>12s}")
            if res.memory:
                print(f"{'rss_growth_mb':32s} {res.memory['growth_mb']:12,.1f}")
            if cfg.out:
                print(f"report: {cfg.out}")
        elif args.command == "collect":
            return _collect(args)
        elif args.command == "perception":
            return _perception(args)
        elif args.command == "fusion":
            from agents.reports.fusion_page import run_fusion

            names = [x.strip() for x in args.scenarios.split(",") if x.strip()]
            run_fusion(
                names,
                episodes=args.episodes,
                seed_start=args.seed_start,
                workers=args.workers,
                agent=args.agent,
                out=args.out,
                progress=not args.no_progress,
            )
            print(f"report: {Path(args.out) / 'fusion.md'}")
        elif args.command == "scenarios":
            from drive_sim.scenarios import load_scenario, scenario_names

            names = scenario_names()
            width = max(map(len, names))
            for name in names:
                print(f"{name:{width}s}  {load_scenario(name).description}")
    except (ConfigError, ValueError, OSError, RecursionError, GymError) as err:
        print(f"drive-sim: error: {one_line(err)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head & co.
        return 0
    except KeyboardInterrupt:
        print("drive-sim: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
