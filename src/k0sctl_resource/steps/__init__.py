"""The three Concourse steps: check, get (in) and put (out). A put runs one of the commands
(`k0sctl_resource.commands`); what steps and commands share is in `k0sctl_resource.shared`."""
