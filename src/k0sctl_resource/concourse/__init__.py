"""The Concourse side: the request on stdin, the typed requests and params, the answer channel, the typed
responses and their metadata, the build variables, and the step runner with its failure report. Knows no
step and no outside system."""
