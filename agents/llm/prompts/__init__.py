"""Prompt templates of the LLM diagnosis engine, shipped as package data.

Each ``*.md`` file is a ``str.format`` template; its ``{placeholders}`` are
filled in by :mod:`agents.llm._prompts`.
"""
