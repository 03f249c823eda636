"""Rollout fingerprints: prove that a speed change changed no result.

    python scripts/fingerprint.py --record fingerprints.json      # before the change
    python scripts/fingerprint.py --check fingerprints.json       # after it: every digest the same, or the first step that differs

Each (id, observation, driver) runs a fresh env from ``reset(seed=7)`` for ``--steps`` steps of
seeded actions (the determinism tests' action stream; every id on lidar, a few on the other
observations) or of the expert's (on kinematics, five ids: whole episodes with lane changes,
recycled traffic and signals), resetting on episode ends, and keeps one
SHA-256 digest per step over the observation's bytes, the reward's and every info value's exact
bits, and the end flags. ``--check`` recomputes and compares step by step and names the first
step whose digest differs (and which part: observation, reward, info key).

Digests are exact bits of this machine's floating point: numpy's vectorised sin, cos and exp
differ in the last bit between CPU generations, so record and check on the same machine. That is
why this is a script run around a change, not a test with committed digests (the determinism tests
compare two runs of the same code in one process instead).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: The pairs checked by default: every id with lidar, the other observations on Highway and a junction.
DEFAULT_OBS = ("lidar",)
EXTRA = (
    ("DriveSim/Highway-v0", "kinematics"),
    ("DriveSim/Highway-v0", "camera"),
    ("DriveSim/Highway-v0", "multi"),
    ("DriveSim/Intersection-v0", "kinematics"),
    ("DriveSim/Roundabout-v0", "camera"),
    ("DriveSim/Highway-v0", "perceived"),
)
#: Pairs driven by the expert (on kinematics) for whole episodes: long enough for lane changes,
#: recycling, signals and junction traffic, which the short crash-ended episodes of random actions
#: never reach.
EXPERT = ("DriveSim/Highway-v0", "DriveSim/Highway-Dense-v0", "DriveSim/Merge-v0", "DriveSim/Intersection-v0", "DriveSim/Roundabout-v0")


def _feed(h: Any, value: Any) -> None:
    """Hash ``value``'s exact content (arrays by bytes, dtype and shape; floats by their bits)."""
    if isinstance(value, dict):
        for k in sorted(value):
            h.update(str(k).encode())
            _feed(h, value[k])
    elif isinstance(value, np.ndarray):
        h.update(f"{value.dtype}{value.shape}".encode())
        h.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, (list, tuple)):
        h.update(f"seq{len(value)}".encode())
        for v in value:
            _feed(h, v)
    elif isinstance(value, (bool, np.bool_)):
        h.update(b"T" if value else b"F")
    elif isinstance(value, (float, np.floating)):
        h.update(struct.pack("<d", float(value)))
    elif isinstance(value, (int, np.integer)):
        h.update(str(int(value)).encode())
    else:
        h.update(repr(value).encode())


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        _feed(h, p)
    return h.hexdigest()[:16]


def _actions(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [np.clip(rng.normal([0.0, 0.3], [0.1, 0.4]), -1, 1).astype(np.float32) for _ in range(n)]


def rollout(env_id: str, obs_type: str, steps: int, driver: str = "random") -> list[dict[str, str]]:
    """Per step: the digests of the observation, the reward and ends, and each info key.

    ``driver``: ``random`` (seeded actions) or ``expert`` (the expert, on ``kinematics``).
    """
    import gymnasium as gym

    import drive_sim  # noqa: F401

    env = gym.make(env_id, obs_type=obs_type, action_type="continuous")
    obs, info = env.reset(seed=7)
    agent = None
    if driver == "expert":
        from agents.policies.loader import load_agent

        agent = load_agent("expert", env)
        agent.reset()
    out = [{"obs": _digest(obs), "reward": _digest(0.0), **{f"info.{k}": _digest(v) for k, v in info.items()}}]
    for a in _actions(steps):
        if agent is not None:
            a = agent.act(obs)
        obs, reward, terminated, truncated, info = env.step(a)
        out.append(
            {"obs": _digest(obs), "reward": _digest(reward, terminated, truncated), **{f"info.{k}": _digest(v) for k, v in info.items()}}
        )
        if terminated or truncated:
            obs, info = env.reset()
            if agent is not None:
                agent.reset()
            out.append({"obs": _digest(obs), "reward": _digest(0.0), **{f"info.{k}": _digest(v) for k, v in info.items()}})
    env.close()
    return out


def pairs(obs_types: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(id, observation, driver): every registered id with each of ``obs_types``, ``EXTRA``, then ``EXPERT``."""
    from drive_sim.registration import ENV_IDS

    out = [(eid, o, "random") for eid in ENV_IDS for o in obs_types]
    out += [(eid, o, "random") for eid, o in EXTRA if (eid, o, "random") not in out]
    return out + [(eid, "kinematics", "expert") for eid in EXPERT]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--record", metavar="FILE", help="write the fingerprints here")
    g.add_argument("--check", metavar="FILE", help="compare against the fingerprints in this file")
    p.add_argument("--steps", type=int, default=300, help="steps per pair (default 300)")
    p.add_argument("--only", default="", help="comma-separated ids to run (default: every pair)")
    args = p.parse_args(argv)
    from tqdm import tqdm

    todo = pairs(DEFAULT_OBS)
    if args.only:
        keep = set(args.only.split(","))
        todo = [t for t in todo if t[0] in keep]
    if args.check:
        try:
            ref = json.loads(Path(args.check).read_text())
        except (OSError, ValueError) as err:
            print(f"check: cannot read {args.check} ({err})", file=sys.stderr)
            return 2
        if ref.get("steps") != args.steps:
            print(f"check: {args.check} was recorded with --steps {ref.get('steps')}; run with the same", file=sys.stderr)
            return 2
    results: dict[str, list[dict[str, str]]] = {}
    bad = 0
    for eid, obs_type, driver in tqdm(todo, desc="fingerprints", unit="pair"):
        key = f"{eid}|{obs_type}|{driver}"
        results[key] = rollout(eid, obs_type, args.steps, driver)
        if args.check:
            want = ref["pairs"].get(key)
            if want is None:
                tqdm.write(f"{key}: not in {args.check}")
                continue
            for i, (a, b) in enumerate(zip(results[key], want, strict=False)):
                if a != b:
                    parts = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
                    tqdm.write(f"{key}: differs at step {i}: {', '.join(parts[:6])}")
                    bad += 1
                    break
            else:
                if len(results[key]) != len(want):
                    tqdm.write(f"{key}: {len(results[key])} steps against {len(want)}")
                    bad += 1
    if args.record:
        tmp = Path(args.record + ".tmp")
        tmp.write_text(json.dumps({"steps": args.steps, "pairs": results}))
        tmp.replace(args.record)
        print(f"recorded {len(results)} pairs x {args.steps} steps in {args.record}")
        return 0
    print(f"{len(results) - bad} of {len(results)} pairs identical" + ("" if not bad else f"; {bad} differ"))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
