"""drive-sim: the simulated driving world (PyBullet), with no RL and no torch.

Importing this package prints nothing and opens no display.
"""

from __future__ import annotations

__version__ = "0.1.0"
