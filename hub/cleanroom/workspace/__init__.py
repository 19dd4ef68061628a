"""A workspace's lifecycle: spawner, labels, folders and quotas, culling, enforcement, status."""
