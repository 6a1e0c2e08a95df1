"""Operator tooling for shared slots: the ``slots`` and ``limits`` commands.

:mod:`slot_tools.snapshot` reads who holds and who waits; :mod:`slot_tools.rules` is the one
rulebook of anomalies; :mod:`slot_tools.repair` maps its findings to actions;
:mod:`slot_tools.history` and :mod:`slot_tools.timeline` prove after the fact that a limit
held; :mod:`slot_tools.limits_sync` makes the server match ``limits.toml``.
"""
