"""Operating the installation: tenants' lifecycle (create, plan, keys, delete and purge) behind the admin token."""
