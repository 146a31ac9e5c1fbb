"""Fleet simulation: scenarios, the process supervisor, the invariant checker, netem mode.

`scenario` reads and validates a scenario TOML file (docs/simulation.md); `supervisor` starts
and stops every process a run starts; `invariants` compares what each POS was acked against
the store; `netem` puts boards in network namespaces behind `tc netem` (root only).
"""
