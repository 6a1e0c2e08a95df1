"""The audit flow package."""
