"""Seed data shipped with the package: ``incidents.yaml``, the past incidents memory starts with."""
