"""`python -m cli`: the `chatbot` console script, run as a module (e.g. from a checkout not installed)."""

from cli.app import app

app(prog_name="chatbot")
