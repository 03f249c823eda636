"""Reports: the generators of the pages in docs/ (performance, training throughput, results, scenarios, vehicle, benchmark, expert).

Above training and evaluation (a page measures or reads what they produce); only the command imports this room.
"""
