"""k0sctl-resource: a Concourse resource type that drives k0sctl."""

__version__ = "0.1.0"
