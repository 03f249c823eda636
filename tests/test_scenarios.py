from __future__ import annotations

import pytest

from drive_sim.config import ConfigError
from drive_sim.scenarios import Scenario, load_scenario, scenario_names


def test_library_loads():
    assert {"highway", "lanekeep", "highway-ice", "highway-changingweather"} <= set(scenario_names())
    for name in scenario_names():
        assert load_scenario(name).description, name
    hw = load_scenario("highway")
    assert hw.world.traffic.count == 20 and hw.world.road.lanes == 4 and hw.success == "survive"
    lk = load_scenario("lanekeep")
    assert lk.world.road.layout == "curvy" and lk.world.traffic.count == 0 and lk.success == "route"


def test_custom_yaml_deep_merges_over_defaults(tmp_path):
    path = tmp_path / "icy.yaml"
    path.write_text("description: icy highway\nworld:\n  friction: 0.15\n  traffic: {count: 5}\n")
    sc = Scenario.from_yaml(path)
    assert sc.name == "icy" and sc.world.friction == 0.15 and sc.world.traffic.count == 5
    assert sc.world.traffic.speed_max_mps == 30.0, "nested defaults survive the merge"


@pytest.mark.parametrize(
    "text,match",
    [
        ("world:\n  traffic: {cnt: 5}\n", r"icy.yaml: unknown config key 'world.traffic.cnt'; allowed: count, "),
        ("world: {friction: high}\n", r"icy.yaml: world.friction: expected a number"),
        ("time_limit_s: [1, 2\n", r"icy.yaml: line \d+ is not valid YAML"),
        ("- a\n- b\n", r"icy.yaml: a scenario file must hold a mapping"),
        ("route_length_m: 5000\n", r"route_length_m: start \+ jitter \+ route"),
    ],
)
def test_bad_scenario_file_names_file_and_field(tmp_path, text, match):
    path = tmp_path / "icy.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        Scenario.from_yaml(path)


def test_missing_scenario_file(tmp_path):
    with pytest.raises(ConfigError, match="scenario: .*nope.yaml does not exist"):
        Scenario.from_yaml(tmp_path / "nope.yaml")


def test_docs_example_scenario_loads_and_runs(tmp_path):
    import gymnasium as gym
    import numpy as np

    import envs  # noqa: F401
    from agents.reports.scenario_docs import EXAMPLE

    path = tmp_path / "snowy-commute.yaml"
    path.write_text(EXAMPLE)
    env = gym.make("DriveSim/Custom-v0", scenario=str(path))
    env.reset(seed=0)
    for _ in range(20):
        env.step(np.array([0.0, 0.2], np.float32))
    assert env.unwrapped.scenario.world.friction == 0.35 and env.unwrapped.scenario.world.traffic.count == 25
    env.close()


@pytest.mark.parametrize(
    "text,match",
    [
        ("world: {traffic: {density_per_km_per_lane: -2}}", "traffic.density_per_km_per_lane: must be 0 or more"),
        ("world: {traffic: {mix: {cautious: -1}}}", "traffic.mix: shares must be non-negative"),
        ("world: {traffic: {mix: {reckless: 1}}}", "unknown config key 'world.traffic.mix.reckless'"),
    ],
)
def test_bad_traffic_yaml(tmp_path, text, match):
    path = tmp_path / "traffic.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError, match=match):
        Scenario.from_yaml(path)


def test_every_env_says_its_horizon_in_its_spec():
    """Issue 17: spec.max_episode_steps was None though every scenario has a fixed horizon."""
    import gymnasium as gym

    from drive_sim.registration import ENV_IDS

    for env_id, name in ENV_IDS.items():
        sc = load_scenario(name)
        env = gym.make(env_id)
        assert env.spec.max_episode_steps == round(sc.time_limit_s / sc.world.control_period_s), env_id
        env.close()
        # The registry sets none: Gymnasium's TimeLimit would cut an episode whose time limit a config made longer.
        assert gym.spec(env_id).max_episode_steps is None
    longer = gym.make("DriveSim/Highway-v0", cfg={"scenario": {"time_limit_s": 60.0}})
    assert longer.spec.max_episode_steps == 600
    longer.close()
