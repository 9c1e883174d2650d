"""Diagnostics that show the pathology and its cure (DESIGN.md §5): variance maps of priors (:mod:`.variance`),
Proposition 1's gradient probes (:mod:`.gradients`), learning curves (:mod:`.curves`), policy evaluation
(:mod:`.evaluation`), in one figure style (:mod:`.style`). Each writes a figure and returns its numbers."""
