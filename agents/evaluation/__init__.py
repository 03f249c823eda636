"""Evaluation: the one episode loop, the episode summary and aggregate, the benchmark grid and its backends, replay and video.

Imports only policies (what it drives).
"""
