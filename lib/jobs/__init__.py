"""The job kernel: what every job shares.

- ``registry``: every job by its notebook's name → the function that does it (and each
  destination's params key → its publisher); read by the CLI, the DAGs, the header, the
  demo and the tests.
- ``context``: the run set-up (params → metadata → mode → ``auto`` state).
- ``result``: the result base class (identity, notes, errors, stats, ``summary``,
  ``raise_for_errors``).

Nothing is imported here, so reading the registry (the header does in every kernel) costs
no import of S3 or params code.
"""
