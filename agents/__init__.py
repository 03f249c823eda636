"""Policies and the application layer, in rooms by job; each room imports only the rooms before it.

``agents.policies`` (what acts: the Agent protocol, random, expert, Q-learning, SB3, the zoo, the one
loader) <- ``agents.evaluation`` (the one episode loop and summary, the benchmark grid, replay and
video) <- ``agents.training`` (configs, run folders, train and resume) <- ``agents.reports`` (the
generators of docs/ pages) <- ``agents.cli`` (the ``drive-sim`` command). docs/design.md, "Where
things live", says where a new policy, metric, report or command goes.
"""
