"""Every flow package's deployments, gathered in one place and served together."""
