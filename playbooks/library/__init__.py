"""The shipped playbooks, one YAML file each (package data)."""
