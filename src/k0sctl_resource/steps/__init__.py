"""The steps: check, get (in), put (out) and one module per put command; `StepContext` is what they share."""
