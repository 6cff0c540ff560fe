"""The Concourse side: the request on stdin, the answer channel, metadata, a step's result, the build
variables, and the step runner with its failure report. Knows no step and no outside system."""
