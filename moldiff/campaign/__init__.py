"""Generation campaigns: a validated campaign file, desirability scoring, selection, batched and
sharded runs that resume, and the offline HTML report.

``config`` (the campaign file), ``desirability`` (transforms and their weighted geometric mean),
``selection`` (hard filters, duplicates, scaffold cap, ranking), ``reference`` (what novelty and
similarity compare against), ``runner`` (batches, shards, merge, outputs, MLflow) and ``report``.
Chemistry comes from :mod:`moldiff.chem.scoring`; nothing here imports RDKit.
"""
