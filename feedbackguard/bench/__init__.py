"""Benchmarks that ship with the package (`feedbackguard bench ...`)."""
