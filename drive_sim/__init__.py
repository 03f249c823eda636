"""drive-sim: the simulated driving world (PyBullet), with no RL and no torch.

Importing this package registers the ``DriveSim/*`` Gymnasium ids (``drive_sim.registration``, the
one module here that imports Gymnasium); it prints nothing, opens no display and imports no
environment until one is made.
"""

from __future__ import annotations

__version__ = "0.1.0"

from drive_sim.registration import register_envs as _register_envs

_register_envs()
