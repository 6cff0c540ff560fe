"""What the steps and the put commands share, below the commands: the step context, the version of a
put, taking a backup, reading `restore_from`, the drill's guard, the confirm check, and the names of
a get's files."""
