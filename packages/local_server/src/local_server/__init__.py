"""The local stack: a Prefect server on an embedded PostgreSQL, its reaper, child processes.

:mod:`local_server.prefect_server` starts the server serve-all and the tests use;
:mod:`local_server.postgres` the embedded PostgreSQL; :mod:`local_server.reaper` stops both
if their owner is killed; :mod:`local_server.processes` is the one child-process lifecycle,
:mod:`local_server.threads` the one background loop of this process.
"""
