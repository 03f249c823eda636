"""docs/reliability.md: hostile files, bad input and outputs that cannot be written, tried on every command.

Each ``Case`` is a ``drive-sim`` command line run in a fresh folder prepared by the case (a model
file with a zip bomb inside, a YAML alias bomb, an episode log with a missing field, an output
folder under a file, ...). A case is handled well when the command exits 2 with one line on stderr
that names the file or field (``expect``), prints no traceback, runs no code from a file (a torch
payload would leave a marker file) and leaves every file that was there before as it was (hashes).

``run_cases`` runs them as separate processes, against this checkout or, with ``python_path``,
another one (the page's "before" column is the code before issue 16, run by the same harness):

    python scripts/reliability.py --out docs/reliability.md [--before-tree OLD_CHECKOUT]
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drive_sim.files import write_text

#: What a case prepares in its folder (the shared fixtures are in ``fixtures``).
Setup = Callable[[Path, Path], None]


@dataclass(frozen=True)
class Case:
    """One hostile input.

    Attributes:
        surface: what it attacks (train, resume, model files, agent files, episode logs, bench, outputs).
        name: what the case is.
        args: the ``drive-sim`` arguments (run in the case's folder).
        expect: text the one error line must hold (the file or field it names).
        setup: writes the case's files into its folder (given the shared fixtures folder).
    """

    surface: str
    name: str
    args: tuple[str, ...]
    expect: str
    setup: Setup | None = None


@dataclass
class Outcome:
    """What a case did."""

    case: Case
    returncode: int
    stderr: str
    handled: bool
    why: str = ""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- hostile files
def _zoo_file(name: str) -> Path:
    from agents.policies.zoo import zoo_entry

    return zoo_entry(name).path


def _rezip(src: Path, out: Path, replace: dict[str, bytes] | None = None, extra: Callable[[zipfile.ZipFile], None] | None = None) -> None:
    """``src`` copied to ``out`` with entries replaced (and more written by ``extra``)."""
    replace = replace or {}
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as b:
        for item in a.infolist():
            b.writestr(item.filename, replace.get(item.filename, a.read(item.filename)))
        if extra is not None:
            extra(b)


def _model_meta_edit(edit: Callable[[dict[str, Any]], Any], name: str = "model.zip") -> Setup:
    def setup(folder: Path, _fixtures: Path) -> None:
        src = _zoo_file("dqn-highway-meta")
        with zipfile.ZipFile(src) as a:
            meta = json.loads(a.read("drive_sim.json"))
        result = edit(meta)
        data = result if isinstance(result, bytes) else json.dumps(meta, allow_nan=True).encode()
        _rezip(src, folder / name, {"drive_sim.json": data})

    return setup


def _zip_bomb(folder: Path, _fixtures: Path) -> None:
    def bomb(z: zipfile.ZipFile) -> None:  # 600 MB of zeros in well under a megabyte
        with z.open("bomb.bin", "w", force_zip64=True) as fh:
            chunk = bytes(8 * 1024 * 1024)
            for _ in range(75):
                fh.write(chunk)

    _rezip(_zoo_file("dqn-highway-meta"), folder / "model.zip", extra=bomb)


def _torch_payload(folder: Path, _fixtures: Path) -> None:
    import io

    import torch

    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (Path.touch, (Path(folder / "PAYLOAD_RAN"),))

    buf = io.BytesIO()
    torch.save({"weights": Payload()}, buf)
    _rezip(_zoo_file("dqn-highway-meta"), folder / "model.zip", {"policy.pth": buf.getvalue()})


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _text(name: str, text: str | bytes) -> Setup:
    def setup(folder: Path, _fixtures: Path) -> None:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode())

    return setup


def _q_table(edit: Callable[[dict[str, Any]], None] | None = None, truncate: int | None = None) -> Setup:
    def setup(folder: Path, _fixtures: Path) -> None:
        import numpy as np

        src = _zoo_file("q-lanekeep-lidar")
        if truncate is not None:
            (folder / "q.npz").write_bytes(src.read_bytes()[:truncate])
            return
        with np.load(src, allow_pickle=False) as z:
            q, header = z["q"], json.loads(str(z["header"]))
        assert edit is not None
        edit(header)
        with open(folder / "q.npz", "wb") as fh:
            np.savez(fh, q=q, header=np.array(json.dumps(header)))

    return setup


def _episode_log(
    edit_meta: Callable[[dict[str, Any]], None] | None = None,
    edit_arrays: Callable[[dict[str, Any]], None] | None = None,
    raw_meta: bytes | None = None,
) -> Setup:
    def setup(folder: Path, fixtures: Path) -> None:
        import numpy as np

        shutil.copytree(fixtures / "log", folder / "log")
        if raw_meta is not None:
            (folder / "log" / "episode.json").write_bytes(raw_meta)
        if edit_meta is not None:
            meta_path = folder / "log" / "episode.json"
            meta = json.loads(meta_path.read_text())
            edit_meta(meta)
            meta_path.write_text(json.dumps(meta))
        if edit_arrays is not None:
            path = folder / "log" / "arrays.npz"
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            edit_arrays(arrays)
            with open(path, "wb") as fh:
                np.savez_compressed(fh, **arrays)

    return setup


def _run_folder(edit: Callable[[Path], None]) -> Setup:
    def setup(folder: Path, fixtures: Path) -> None:
        shutil.copytree(fixtures / "run", folder / "run")
        edit(folder / "run")

    return setup


def _under_a_file(folder: Path, _fixtures: Path) -> None:
    (folder / "file").write_text("not a folder")


def _bench_folder(edit: Callable[[Path], None]) -> Setup:
    def setup(folder: Path, fixtures: Path) -> None:
        shutil.copytree(fixtures / "bench", folder / "res")
        edit(folder / "res")

    return setup


BOMB_YAML = "hyperparams:\n  a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"  {chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(9)
)
EVAL = ("evaluate", "--scenario", "highway", "--episodes", "1")
EVAL_Q = ("evaluate", "--episodes", "1")
REPLAY = ("replay", "--agent", "expert", "--scenario", "highway", "--max-steps", "3")
TRAIN = ("train", "--scenario", "lanekeep", "--algo", "q", "--total-steps", "200", "--eval-episodes", "1", "--out-dir", "runs")


def _status(state: str | None = "interrupted", checkpoint: str | None = "checkpoints/step_000000200.zip") -> Callable[[Path], None]:
    def edit(run: Path) -> None:
        status = json.loads((run / "status.json").read_text())
        status.update(state=state, checkpoint=checkpoint)
        (run / "status.json").write_text(json.dumps(status))

    return edit


def _chain(*edits: Callable[[Path], None]) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        for e in edits:
            e(path)

    return edit


CASES: tuple[Case, ...] = (
    # ---- train: configs and names
    Case("train", "YAML alias bomb in hyperparams", (*TRAIN, "--config", "bomb.yaml"), "bomb.yaml", _text("bomb.yaml", BOMB_YAML)),
    Case(
        "train", "config nested 10,000 deep", (*TRAIN, "--config", "deep.yaml"), "deep.yaml", _text("deep.yaml", "env: " + _nested(10_000))
    ),
    Case(
        "train",
        "config of 50 MB",
        (*TRAIN, "--config", "big.yaml"),
        "big.yaml",
        _text("big.yaml", "env:\n  x: [" + "1, " * 17_000_000 + "1]\n"),
    ),
    Case("train", "config not UTF-8", (*TRAIN, "--config", "latin.yaml"), "latin.yaml", _text("latin.yaml", b"train: {name: caf\xe9}\n")),
    Case(
        "train",
        "alias bomb in env.scenario.description",
        (*TRAIN, "--config", "bomb2.yaml"),
        "bomb2.yaml",
        _text("bomb2.yaml", BOMB_YAML.replace("hyperparams:", "env:\n  scenario:\n    description:").replace("\n  ", "\n      ")),
    ),
    Case(
        "train",
        "negative SB3 batch size",
        ("train", "--scenario", "lanekeep", "--total-steps", "300", "--out-dir", "runs", "--config", "neg.yaml"),
        "batch_size",
        _text("neg.yaml", "hyperparams: {batch_size: -1}\n"),
    ),
    Case("train", "--name leaving --out-dir", (*TRAIN, "--name", "../../escaped"), "name"),
    Case(
        "train",
        "--out-dir under a file",
        ("train", "--scenario", "lanekeep", "--algo", "q", "--total-steps", "200", "--out-dir", "file/runs"),
        "file/runs",
        _under_a_file,
    ),
    Case(
        "train",
        "--out-dir in /proc",
        ("train", "--scenario", "lanekeep", "--algo", "q", "--total-steps", "200", "--out-dir", "/proc/drive-sim-runs"),
        "/proc/drive-sim-runs",
    ),
    # ---- resume
    Case(
        "resume",
        "unparseable config.yaml",
        ("train", "--resume", "run"),
        "config.yaml",
        _run_folder(_chain(_status(), lambda r: (r / "config.yaml").write_text("train: {algo: dqn\nenv: [unclosed\n"))),
    ),
    Case(
        "resume",
        "config.yaml that is a string",
        ("train", "--resume", "run"),
        "config.yaml",
        _run_folder(_chain(_status(), lambda r: (r / "config.yaml").write_text("just text\n"))),
    ),
    Case(
        "resume",
        "missing DQN replay buffer",
        ("train", "--resume", "run"),
        "replay.npz",
        _run_folder(_chain(_status(), lambda r: (r / "checkpoints" / "step_000000200.replay.npz").unlink())),
    ),
    Case(
        "resume",
        "checkpoint without optimiser state",
        ("train", "--resume", "run"),
        "step_000000200.zip",
        _run_folder(_chain(_status(), lambda r: _drop_entry(r / "checkpoints" / "step_000000200.zip", "policy.optimizer.pth"))),
    ),
    Case(
        "resume",
        "status.json not JSON",
        ("train", "--resume", "run"),
        "status.json",
        _run_folder(lambda r: (r / "status.json").write_text("{running")),
    ),
    Case("resume", "status.json with a bad state", ("train", "--resume", "run"), "status.json", _run_folder(_status(state="sleeping"))),
    # ---- model files (evaluate, bench and replay read them alike)
    Case("model files", "zip bomb inside (600 MB of zeros)", (*EVAL, "--agent", "model.zip"), "model.zip", _zip_bomb),
    Case(
        "model files",
        "observation space of 100000 x 100000",
        (*EVAL, "--agent", "model.zip"),
        "observation_space.shape",
        _model_meta_edit(lambda m: m["observation_space"].update(shape=[100_000, 100_000])),
    ),
    Case("model files", "drive_sim.json without algo", (*EVAL, "--agent", "model.zip"), "algo", _model_meta_edit(lambda m: m.pop("algo"))),
    Case(
        "model files",
        "policy of the wrong type",
        (*EVAL, "--agent", "model.zip"),
        "policy",
        _model_meta_edit(lambda m: m.update(policy="big")),
    ),
    Case(
        "model files",
        "unknown policy field",
        (*EVAL, "--agent", "model.zip"),
        "policy.layers",
        _model_meta_edit(lambda m: m["policy"].update(layers=3)),
    ),
    Case(
        "model files",
        "env id of an unknown namespace",
        ("evaluate", "--agent", "model.zip", "--episodes", "1"),
        "env_id",
        _model_meta_edit(lambda m: m.update(env_id="Other/Road-v0")),
    ),
    Case(
        "model files",
        "normalisation of the wrong size",
        (*EVAL, "--agent", "model.zip"),
        "normalisation",
        _model_meta_edit(
            lambda m: m.update(
                normalisation={
                    "norm_obs": True,
                    "norm_reward": False,
                    "clip_obs": 10.0,
                    "epsilon": 1e-8,
                    "obs_mean": [0.0],
                    "obs_var": [1.0],
                }
            )
        ),
    ),
    Case(
        "model files",
        "drive_sim.json nested 100,000 deep",
        (*EVAL, "--agent", "model.zip"),
        "drive_sim.json",
        _model_meta_edit(lambda m: _nested(100_000).encode()),
    ),
    Case(
        "model files",
        "drive_sim.json not UTF-8",
        (*EVAL, "--agent", "model.zip"),
        "drive_sim.json",
        _model_meta_edit(lambda m: b'{"format": 1, "algo": "dqn\xff"}'),
    ),
    Case("model files", "torch payload in policy.pth", (*EVAL, "--agent", "model.zip"), "model.zip", _torch_payload),
    Case("model files", "truncated Q table", (*EVAL_Q, "--agent", "q.npz"), "q.npz", _q_table(truncate=300)),
    Case(
        "model files",
        "Q table header with bins of the wrong type",
        (*EVAL_Q, "--agent", "q.npz"),
        "discretiser.bins",
        _q_table(edit=lambda h: h["discretiser"].update(bins="many")),
    ),
    Case("model files", "Q table header without names", (*EVAL_Q, "--agent", "q.npz"), "names", _q_table(edit=lambda h: h.pop("names"))),
    # ---- agent files
    Case(
        "agent files",
        "random agent without a seed",
        (*EVAL, "--agent", "r.json"),
        "seed",
        _text(
            "r.json",
            json.dumps({"agent": "random", "action_space": {"type": "Box", "shape": [2], "dtype": "float32", "low": -1, "high": 1}}),
        ),
    ),
    Case(
        "agent files",
        "expert with an infinite control period",
        (*EVAL, "--agent", "e.json"),
        "control_period_s",
        _text(
            "e.json",
            '{"agent": "expert", "layout": {"vehicles": 10, "waypoints": 16, "spacing_m": 4.0}, "driver": {}, '
            '"control_period_s": Infinity}',
        ),
    ),
    Case(
        "agent files",
        "expert without a layout",
        (*EVAL, "--agent", "e2.json"),
        "layout",
        _text("e2.json", '{"agent": "expert", "driver": {}, "control_period_s": 0.1}'),
    ),
    Case(
        "agent files", "agent JSON nested 100,000 deep", (*EVAL, "--agent", "deep.json"), "deep.json", _text("deep.json", _nested(100_000))
    ),
    Case("agent files", "agent JSON not UTF-8", (*EVAL, "--agent", "bad.json"), "bad.json", _text("bad.json", b'{"agent": "rand\xe9m"}')),
    # ---- episode logs
    Case(
        "episode logs",
        "episode.json without info_fields",
        ("replay", "log", "--out", "v.mp4"),
        "info_fields",
        _episode_log(edit_meta=lambda m: m.pop("info_fields")),
    ),
    Case(
        "episode logs",
        "ego array of the wrong shape",
        ("replay", "log", "--out", "v.mp4"),
        "ego",
        _episode_log(edit_arrays=lambda a: a.update(ego=a["ego"][:, :3])),
    ),
    Case(
        "episode logs",
        "reset seed negative",
        ("replay", "log", "--out", "v.mp4"),
        "reset.seed",
        _episode_log(edit_meta=lambda m: m["reset"].update(seed=-1)),
    ),
    Case(
        "episode logs",
        "episode.json not UTF-8",
        ("replay", "log", "--out", "v.mp4"),
        "episode.json",
        _episode_log(raw_meta=b'{"format_version": 1, "env_id": "DriveSim/Highway-v0\xff"}'),
    ),
    # ---- bench and replay arguments
    Case("bench", "--scenarios ','", ("bench", "--agents", "random", "--scenarios", ",", "--out", "res"), "scenarios"),
    Case(
        "bench",
        "--backend ray --address auto without a cluster",
        (
            "bench",
            "--agents",
            "random",
            "--scenarios",
            "highway",
            "--episodes",
            "1",
            "--backend",
            "ray",
            "--address",
            "auto",
            "--out",
            "res2",
        ),
        "address",
    ),
    Case(
        "bench",
        "bench.json not JSON",
        ("bench", "--agents", "random", "--scenarios", "lanekeep", "--episodes", "1", "--out", "res"),
        "bench.json",
        _bench_folder(lambda f: (f / "bench.json").write_text("{grid")),
    ),
    Case(
        "bench",
        "episodes.csv of another version's columns",
        ("bench", "--agents", "random", "--scenarios", "lanekeep", "--episodes", "1", "--out", "res"),
        "episodes.csv",
        _bench_folder(lambda f: (f / "episodes.csv").write_text((f / "episodes.csv").read_text().replace(",reason\n", ",why\n", 1))),
    ),
    Case("replay", "--seed -1", (*REPLAY, "--seed", "-1", "--out", "v.mp4"), "seed"),
    # ---- outputs that cannot be written
    Case("outputs", "evaluate --out under a file", (*EVAL, "--agent", "random", "--out", "file/x.json"), "file/x.json", _under_a_file),
    Case("outputs", "replay --out under a file", (*REPLAY, "--out", "file/v.mp4"), "file/v.mp4", _under_a_file),
    Case("outputs", "replay --record under a file", (*REPLAY, "--out", "v.mp4", "--record", "file/logs"), "file/logs", _under_a_file),
    Case(
        "outputs",
        "bench --out under a file",
        ("bench", "--agents", "random", "--scenarios", "lanekeep", "--episodes", "1", "--out", "file/r"),
        "file/r",
        _under_a_file,
    ),
    Case("outputs", "perf --out under a file", ("perf", "--quick", "--cpu", "-1", "--out", "file/perf.md"), "file/perf.md", _under_a_file),
    Case("outputs", "evaluate --out in /proc", (*EVAL, "--agent", "random", "--out", "/proc/x.json"), "/proc/x.json"),
)


def _drop_entry(path: Path, name: str) -> None:
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(path) as a, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as b:
        for item in a.infolist():
            if item.filename != name:
                b.writestr(item.filename, a.read(item.filename))
    tmp.replace(path)


# ---------------------------------------------------------------------------------------------- running
def make_fixtures(folder: Path) -> Path:
    """The shared inputs the cases edit: an interrupted DQN run with a checkpoint, an episode log, a bench folder."""
    import gymnasium as gym
    import numpy as np

    import envs  # noqa: F401
    from agents.evaluation.bench import BenchConfig, run_bench
    from agents.training.config import resolve_config
    from agents.training.trainer import train
    from envs.recording import RecordEpisodes

    folder.mkdir(parents=True, exist_ok=True)
    overrides = {"scenario": "highway", "algo": "dqn", "obs": "kinematics", "action": "meta", "total_steps": 400, "eval_episodes": 1}
    cfg, source = resolve_config({**overrides, "out_dir": str(folder), "name": "run"})
    short = dataclasses.replace(cfg.train, checkpoint_every_steps=200, eval_every_steps=0)
    train(dataclasses.replace(cfg, train=short, hyperparams={**cfg.hyperparams, "learning_starts": 50}), source=source, progress=False)
    env = RecordEpisodes(
        gym.make("DriveSim/Highway-v0", obs_type="kinematics", action_type="continuous"), folder, name=lambda _i, _s: "log"
    )
    env.reset(seed=1)
    for _ in range(3):
        env.step(np.array([0.0, 0.2], np.float32))
    env.close()
    run_bench(BenchConfig(agents=("random",), scenarios=("lanekeep",), episodes=1, workers=1, out=str(folder / "bench")), progress=False)
    return folder


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".bench.lock"
    }


#: Address space a case's command may take: a bounded reader never needs it, an alias bomb or zip bomb would (and the
#: machine running the cases must survive the code before the fix, which grew to 12 GB on the alias bomb).
MEMORY_LIMIT_BYTES = 6 << 30


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))


def run_case(case: Case, fixtures: Path, python_path: str | None = None, timeout: float = 300.0) -> Outcome:
    """Run one case in a fresh folder and judge it (see the module docstring)."""
    import time

    with tempfile.TemporaryDirectory(prefix="drive-sim-case-") as tmp:
        # Two levels down, so a command that escapes its folder (``--name ../../x``) still writes inside ``tmp``: seen, and cleaned up.
        folder = Path(tmp) / "a" / "case"
        folder.mkdir(parents=True)
        if case.setup is not None:
            case.setup(folder, fixtures)
        before = _digest(folder)
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        if python_path:
            env["PYTHONPATH"] = python_path
        t0 = time.perf_counter()
        try:
            r = subprocess.run(
                [sys.executable, "-m", "agents.cli", *case.args, "--no-progress"],
                cwd=folder,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                preexec_fn=_limit_memory,
            )
            rc, err = r.returncode, r.stderr
        except subprocess.TimeoutExpired:
            rc, err = -1, f"did not finish in {timeout:.0f} s"
        seconds = time.perf_counter() - t0
        after = _digest(folder)
        outside = [p for p in Path(tmp).rglob("*") if folder not in p.parents and p != folder and p not in folder.parents]
        lines = [line for line in err.strip().splitlines() if line.strip()]
        why = ""
        if (folder / "PAYLOAD_RAN").exists():
            why = "code from the file ran"
        elif outside:
            why = f"wrote outside its folder ({outside[0].relative_to(tmp)})"
        elif rc != 2:
            why = f"exit {rc}" + (" (timed out)" if rc == -1 else "")
        elif "Traceback" in err:
            why = "a traceback"
        elif len(lines) != 1:
            why = f"{len(lines)} lines"
        elif case.expect not in lines[0]:
            why = f"does not name {case.expect!r}"
        elif "weights_only" in lines[0]:
            why = "relays torch's advice to load with weights_only=False"
        elif any(after.get(k) != v for k, v in before.items()):
            why = "changed a file that was there"
        return Outcome(case, rc, err, not why, why, seconds)


def run_cases(
    cases: Sequence[Case] = CASES, *, python_path: str | None = None, workers: int = 2, fixtures: Path | None = None, progress: bool = True
) -> list[Outcome]:
    """Every case (against this checkout, or the packages at ``python_path``), ``workers`` at a time."""
    from tqdm import tqdm

    with tempfile.TemporaryDirectory(prefix="drive-sim-fixtures-") as tmp:
        fix = fixtures or make_fixtures(Path(tmp))
        with ThreadPoolExecutor(workers) as pool, tqdm(total=len(cases), desc="cases", disable=not progress) as bar:
            futures = [pool.submit(run_case, c, fix, python_path) for c in cases]
            out = []
            for f in futures:
                out.append(f.result())
                bar.update()
    return out


def write_reliability_page(
    out: str | Path, after: Sequence[Outcome], before: Sequence[Outcome] | None = None, *, command: str = ""
) -> Path:
    """The page: per surface, cases tried and handled well (before and after), and every case that is not handled."""
    from agents.reports.perf import machine_info

    out = Path(out)
    m = machine_info()
    surfaces = list(dict.fromkeys(o.case.surface for o in after))
    old = {o.case.name: o for o in before or ()}
    lines = [
        "# Reliability: hostile files, bad input, outputs that cannot be written",
        "",
        f"Measured {m['date']} with `{command or 'python scripts/reliability.py --out ' + out.as_posix()}` on {m['cpu']}, "
        f"{m['logical_cores']} cores. Each case is a `drive-sim` command run in a fresh folder the case prepares; it is "
        "handled well when the command exits 2 with one line that names the file or field, prints no traceback, runs no "
        "code from a file and leaves every file that was there as it was (SHA-256 before and after). The cases live in "
        "`agents/reports/reliability.py` (`CASES`); `tests/test_reliability.py` runs every one of them.",
        "",
        "| surface | cases | handled well" + (" (before issue 16)" if before else "") + " | handled well (now) |",
        "|---|---:|" + ("---:|" if before else "") + "---:|",
    ]
    for s in surfaces:
        now = [o for o in after if o.case.surface == s]
        row = f"| {s} | {len(now)} |"
        if before:
            then = [old[o.case.name] for o in now if o.case.name in old]
            row += f" {sum(o.handled for o in then)} |"
        lines.append(row + f" {sum(o.handled for o in now)} |")
    total_now = sum(o.handled for o in after)
    lines += [
        "",
        f"All: {total_now} of {len(after)} handled well now" + (f", {sum(o.handled for o in before or ())} before." if before else "."),
    ]
    lines += [
        "",
        "| surface | case | now | before |" if before else "| surface | case | now |",
        "|---|---|---|---|" if before else "|---|---|---|",
    ]
    for o in after:
        now_text = "ok" if o.handled else f"**{o.why}**"
        first = next((line for line in o.stderr.strip().splitlines() if line.strip()), "")[:110].replace("|", "\\|")
        row = f"| {o.case.surface} | {o.case.name}: `{first}` | {now_text} |"
        if before:
            b = old.get(o.case.name)
            row += f" {'ok' if b and b.handled else (b.why if b else '-')} |"
        lines.append(row)
    lines.append("")
    write_text(out, "\n".join(lines))
    return out
