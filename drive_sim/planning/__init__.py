"""Planning: local trajectory planning (Frenet lattice) and the path and speed controllers."""
