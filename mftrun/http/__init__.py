"""HTTP plumbing shared by the providers.

session (transport), retry (policy as data), auth (tokens).
"""
