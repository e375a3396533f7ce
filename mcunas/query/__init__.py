"""Answers from finished (or running) campaigns and from spaces alone, without training.

* :mod:`mcunas.query.studies` opens stored studies read-only and turns their
  trials into one table (``mcunas query`` never creates a storage or study);
* :mod:`mcunas.query.whatif` filters those trials by a new budget, ranks
  them, finds the Pareto set and prices each tightening of the budget;
* :mod:`mcunas.query.frontier` answers "what could fit on my board" from a
  space with no study at all, by sampling and costing candidates;
* :mod:`mcunas.query.pick` picks a trained trial of a study and finds its
  model files, which :mod:`mcunas.export.trial` turns into a deployment folder.

Nothing here imports TensorFlow except the export of a winner.
"""
