"""The channel layer conformance suite, run against each layer we ship or meet.

A package so its module names cannot clash with same-named test modules
elsewhere under ``tests``.
"""
