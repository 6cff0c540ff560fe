"""The fleet tools for the parent pipeline (pipeline/fleet.yml): `fleet-vars` (a vars file per cluster of
clusters.yml, and the guard against archiving a cluster by accident) and `fleet-status` (every cluster's
newest backup and last drill). Not Concourse steps: CLI tools, run as tasks."""
