"""Tables of one or more suite folders' runs, as ``nppac suite report --table`` prints them.

* :mod:`~nppac.experiments.tables.runs` — what the tables read of a run directory.
* :mod:`~nppac.experiments.tables.competence` — does a run keep its prior's competence (against its prior's mean
  action and step 0)?
* :mod:`~nppac.experiments.tables.pathology` — run by run: the drop, the KL, the policy gradient, the Q-values.
* :mod:`~nppac.experiments.tables.priors` — the same algorithms under several priors, a column per suite.
* :mod:`~nppac.experiments.tables.conventions` — the same algorithms in two suites, and their difference.
* :mod:`~nppac.experiments.tables.screen` — a screen's step-0 and epoch-by-epoch report with its figures.
"""

from nppac.experiments.tables import competence, conventions, pathology, priors, runs, screen

__all__ = ["competence", "conventions", "pathology", "priors", "runs", "screen"]
