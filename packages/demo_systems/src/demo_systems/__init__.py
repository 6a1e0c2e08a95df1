"""Stand-ins for the shared systems, used when no real ones are configured.

:mod:`demo_systems.shop` builds the demo shop database (DuckDB; SQL in ``shop/sql``);
:mod:`demo_systems.postgres_loader` loads it into PostgreSQL; :mod:`demo_systems.partner_api`
is the partner HTTP API that refuses with 429 above its capacity; :mod:`demo_systems.parts`
brings both up for serve-all and the direct runs.
"""
