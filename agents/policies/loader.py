"""The one place that turns an agent spec into an Agent (and says which env it drives).

Specs: ``zoo:NAME`` (a pretrained policy shipped in ``agents/policies/zoo``), ``expert`` and
``random`` (built for the env they are given), a model file: ``.zip`` (drive-sim's SB3 files read
without unpickling; a standard SB3 file with ``allow_pickle``), ``.npz`` (Q table), ``.json``
(expert or random settings), an rl-zoo3 run folder (with ``allow_pickle``), or a Python object with
``act(obs)``: ``module:attr`` or ``path/to/file.py:attr`` (``agents.policies.foreign``).
``load_agent`` gives the Agent; ``resolve_agent`` also gives the env it drives (``AgentEnv``), which
evaluation, the benchmark and the videos make.

Any spec of an agent that reads the ``kinematics`` observation may end in ``@perceived``: the same
agent on the ``perceived`` observation (the same layout, filled from perception and fusion instead
of the truth), so that ``expert`` and ``expert@perceived`` stand side by side in a benchmark.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from agents.policies.base import Agent, AgentEnv, read_agent_json
from agents.policies.foreign import ExternalAgent, is_object_spec, is_zoo3_folder, load_object, load_sb3_zip, load_zoo3_folder, sb3_agent

#: Agents built for whatever env they are given: they need a scenario, and drive its kinematics observation.
BUILT_FOR_ENV = ("expert", "random")
#: Model files by ending.
MODEL_SUFFIXES = (".zip", ".npz", ".json")
#: What ``expert``, ``random`` and their JSON files drive (the expert reads kinematics; random reads nothing).
DEFAULT_KINDS = {"obs_type": "kinematics", "action_type": "continuous"}
#: The suffix that puts a kinematics agent on the perceived observation.
PERCEIVED_SUFFIX = "@perceived"


def split_view(spec: str) -> tuple[str, bool]:
    """(the spec without ``@perceived``, whether it had it)."""
    if spec.endswith(PERCEIVED_SUFFIX):
        return spec[: -len(PERCEIVED_SUFFIX)], True
    return spec, False


def load_agent(spec: str, env: Any = None, *, seed: int = 0, allow_pickle: bool = False) -> Agent:
    """The agent named by ``spec`` (see the module docstring); ``expert`` and ``random`` are built for ``env``.

    ``allow_pickle`` lets a file that only loads by running code stored in it load (SB3's own zips,
    rl-zoo3's statistics), with a one-line warning; without it such a file is refused in one line
    that names the opt-in.

    Raises:
        ValueError: one line naming the spec and what is allowed.
    """
    return _load(spec, env, seed, allow_pickle)[0]


def resolve_agent(spec: str, scenario: str | None = None, *, seed: int = 0, allow_pickle: bool = False) -> tuple[Agent, AgentEnv]:
    """The agent named by ``spec`` and the env it drives.

    The env is the one the agent was trained on (its file or zoo entry says), or ``scenario`` (a
    library name or id) with the agent's observation and action types; ``expert`` and ``random``
    need ``scenario`` and drive its ``kinematics`` observation with continuous actions.

    Raises:
        ValueError: one line naming the spec or the scenario.
    """
    base, perceived = split_view(spec)
    if perceived:
        agent, target = resolve_agent(base, scenario, seed=seed, allow_pickle=allow_pickle)
        if target.obs_type != "kinematics":
            raise ValueError(f"agent: {spec}: @perceived replaces the kinematics observation, and {base} reads {target.obs_type!r}")
        return agent, dataclasses.replace(target, obs_type="perceived")
    import envs

    env_id = envs.env_id(scenario) if scenario is not None else None
    if spec in BUILT_FOR_ENV:
        if env_id is None:
            raise ValueError(f"agent: {spec} needs --scenario (it drives whatever env it is given)")
        target = AgentEnv(env_id, **DEFAULT_KINDS)
        probe = target.make()
        try:
            return load_agent(spec, probe, seed=seed), target
        finally:
            probe.close()
    agent, own = _load(spec, None, seed, allow_pickle)
    if own is None:
        if env_id is None:
            raise ValueError(f"agent: {spec} does not say which env it drives; pass --scenario")
        kinds = agent.kinds_for(env_id) if isinstance(agent, ExternalAgent) else DEFAULT_KINDS
        own = AgentEnv(env_id, **kinds)
    elif env_id is not None:
        own = dataclasses.replace(own, env_id=env_id)
    return agent, own


def check_agent(spec: str, *, allow_pickle: bool = False) -> None:
    """Fail with one line (``agents: SPEC: why``) for an agent that cannot be loaded at all; ``expert`` and ``random`` always can."""
    spec = split_view(spec)[0]
    if spec in BUILT_FOR_ENV:
        return
    try:
        load_agent(spec, allow_pickle=allow_pickle)
    except (ValueError, OSError) as err:
        raise ValueError(f"agents: {spec}: {err}") from None


def _load(spec: str, env: Any, seed: int, allow_pickle: bool = False) -> tuple[Agent, AgentEnv | None]:
    """The agent and the env its file or zoo entry names (None where it names none)."""
    spec, perceived = split_view(spec)
    if perceived:
        agent, own = _load(spec, env, seed, allow_pickle)
        return agent, None if own is None else dataclasses.replace(own, obs_type="perceived")
    if spec.startswith("zoo:"):
        from agents.policies.zoo import zoo_entry

        entry = zoo_entry(spec[4:])
        return _from_file(entry.path, algo=entry.algo)[0], entry.env
    if spec in BUILT_FOR_ENV:
        if env is None:
            raise ValueError(f"agent: {spec!r} is built for an env; pass the env it will drive")
        if spec == "random":
            from agents.policies.random_agent import RandomAgent

            return RandomAgent(env.action_space, seed), None
        from agents.policies.expert import ExpertAgent

        return ExpertAgent.for_env(env), None
    if is_object_spec(spec):
        agent = load_object(spec)
        return agent, _agent_env(agent.meta, Path(spec)) if agent.meta.get("env_id") else None
    path = Path(spec)
    if path.is_dir():
        if not is_zoo3_folder(path):
            raise ValueError(f"agent: {path} is a folder but not an rl-zoo3 run folder (ENV_N/ with ENV/args.yml)")
        agent = load_zoo3_folder(path, allow_pickle=allow_pickle)
        return agent, _agent_env(agent.meta, path)
    if path.suffix in MODEL_SUFFIXES:
        return _from_file(path, allow_pickle=allow_pickle)
    raise ValueError(
        f"agent: {spec!r} is not known; allowed: zoo:NAME, expert, random, a .zip, .npz or .json model file, "
        "an rl-zoo3 run folder, or module:attr"
    )


def _from_file(path: Path, algo: str | None = None, *, allow_pickle: bool = False) -> tuple[Agent, AgentEnv | None]:
    """A model file by its ending; ``algo`` (a zoo entry's) checks what an SB3 file holds."""
    agent: Any
    if path.suffix == ".zip":
        from agents.policies.sb3 import META_NAME, SB3Agent

        if _is_foreign_zip(path, META_NAME):
            return sb3_agent(load_sb3_zip(path, allow_pickle=allow_pickle), {}), None
        agent = SB3Agent.load(path, algo=algo)
    elif path.suffix == ".npz":
        from agents.policies.q_learning import QLearningAgent

        agent = QLearningAgent.load(path)
    else:
        from agents.policies.expert import ExpertAgent
        from agents.policies.random_agent import RandomAgent

        loaders = {"random": RandomAgent.load, "expert": ExpertAgent.load}
        kind = read_agent_json(path, None).get("agent")
        if kind not in loaders:
            raise ValueError(f"agent: {path} names agent {kind!r}; allowed: {', '.join(loaders)}")
        return loaders[kind](path), None
    meta = agent.meta
    if not meta.get("env_id"):
        return agent, None
    return agent, _agent_env(meta, path)


def _is_foreign_zip(path: Path, meta_name: str) -> bool:
    """A complete SB3 zip without drive-sim's metadata (SB3's or rl-zoo3's own format)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False  # SB3Agent.load names what is wrong with it
    return "data" in names and meta_name not in names


def _agent_env(meta: dict[str, Any], path: Path) -> AgentEnv:
    """The env a model file names, checked against the registered ids and types (one line naming the field)."""
    import envs

    checks = (("env_id", tuple(envs.ENV_IDS)), ("obs_type", envs.OBS_TYPES), ("action_type", envs.ACTION_TYPES))
    for key, allowed in checks:
        if meta.get(key) not in allowed:
            raise ValueError(
                f"model: {path}: {key}: {meta.get(key)!r} is not a drive-sim {key.replace('_', ' ')}; allowed: {', '.join(allowed)}"
            )
    env_cfg = meta.get("env_cfg") or {}
    if not isinstance(env_cfg, dict):
        raise ValueError(f"model: {path}: env_cfg: expected a mapping of env config overrides")
    return AgentEnv(meta["env_id"], meta["obs_type"], meta["action_type"], env_cfg)
