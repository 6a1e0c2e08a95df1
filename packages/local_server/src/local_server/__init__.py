"""The local stack: a Prefect server on an embedded PostgreSQL, its reaper, child processes.

:mod:`local_server.prefect_server` starts the server serve-all and the tests use;
:mod:`local_server.postgres` the embedded PostgreSQL; :mod:`local_server.reaper` stops both
if their owner is killed; :mod:`local_server.processes` is the one child-process lifecycle.
:mod:`local_server.replicas` runs Prefect's replicated tier instead (API replicas, a services
process, Redis from :mod:`local_server.redis_server`), and :mod:`local_server.balancer` the
load balancer in front of it, for the test that limits hold across replicas.
"""
