"""Tables of one or more suite folders' runs, as ``nppac suite report --table`` prints them: competence, pathology,
priors, conventions and a screen's report, from what :mod:`.runs` reads of the folders."""

from nppac.experiments.tables import competence, conventions, pathology, priors, runs, screen

__all__ = ["competence", "conventions", "pathology", "priors", "runs", "screen"]
