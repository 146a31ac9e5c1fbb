"""Whole fleets simulated on one machine (`daozhang sim`, `daozhang demo`; docs/simulation.md).

`scenario` reads and validates a scenario TOML file; `plan` turns it into a timeline;
`supervisor` starts and stops every process a run starts; `invariants` compares what each POS
was acked against the store; `netem` puts boards in network namespaces behind `tc`; `runner`
and `wiring` run it all (see README.md); `tls` gives a simulated fleet its PKI.
"""
