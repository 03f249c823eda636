"""Policies: the Agent protocol and every kind of agent (random, expert, Q-learning, SB3), the zoo and the one loader.

The bottom room of ``agents``: it imports no other room. ``agents.policies.loader.load_agent``
turns any agent spec (``zoo:NAME``, ``expert``, ``random``, a model file) into an Agent.
"""
