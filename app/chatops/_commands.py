"""The ``/dataops`` command language: parsing the text after the command
into one :class:`Command`, and the help that documents it."""

from __future__ import annotations

from dataclasses import dataclass

from app.errors import InputError

__all__ = ["Command", "parse_command", "usage", "USAGE", "SLOW"]

# name -> (arguments, what it does); the order is the help's order.
USAGE: dict[str, tuple[str, str]] = {
    "status": ("", "pipelines, open incidents and the auto-fix switch"),
    "incidents": ("[open|all]", "incidents, newest first (open ones by default)"),
    "show": ("ID", "one incident: diagnosis, evidence, actions, audit trail"),
    "approve": ("ID", "approve the fix an incident is waiting for; it runs now"),
    "reject": ("ID [reason]", "reject it; nothing more runs"),
    "pause": ("[PIPELINE]", "kill switch: stop auto-fix everywhere, or stop one pipeline and its auto-fix"),
    "resume": ("[PIPELINE]", "lift the kill switch (everywhere needs admin)"),
    "run": ("PIPELINE[/DATASET]", "run a supervised pipeline now"),
    "ask": ("QUESTION", "ask about incidents and the pipelines"),
    "help": ("", "this list"),
}

# Commands that may take longer than Slack's 3 s: answered through response_url.
SLOW = frozenset({"approve", "reject", "run", "ask"})

_ALL = ("all", "*")


@dataclass(frozen=True)
class Command:
    """One parsed command. ``target`` is the incident id or the pipeline;
    ``text`` is the rest (a reason, a question)."""

    name: str
    target: str | None = None
    text: str = ""
    which: str = "open"

    def detail(self) -> dict[str, str]:
        out = {"command": self.name}
        if self.target is not None:
            out["target"] = self.target
        if self.text:
            out["text"] = self.text
        if self.name == "incidents":
            out["which"] = self.which
        return out


def usage(name: str) -> str:
    args, _ = USAGE[name]
    return f"/dataops {name} {args}".rstrip()


def parse_command(text: str) -> Command:
    """``text`` as Slack sends it (everything after ``/dataops``). An empty
    text is ``help``; a malformed one is an InputError that shows the usage."""
    words = text.split()
    if not words:
        return Command("help")
    name = words[0].lower()
    rest = text.strip()[len(words[0]) :].strip()
    args = words[1:]
    if name not in USAGE:
        raise InputError(f"unknown command {words[0]!r}; try `/dataops help`")
    if name in ("status", "help"):
        return Command(name)
    if name == "incidents":
        which = (args[0].lower() if args else "open")
        if which not in ("open", "all") or len(args) > 1:
            raise InputError(f"usage: `{usage(name)}`")
        return Command(name, which=which)
    if name in ("show", "approve"):
        if len(args) != 1:
            raise InputError(f"usage: `{usage(name)}`")
        return Command(name, target=args[0])
    if name == "reject":
        if not args:
            raise InputError(f"usage: `{usage(name)}`")
        return Command(name, target=args[0], text=rest[len(args[0]) :].strip())
    if name in ("pause", "resume"):
        if len(args) > 1:
            raise InputError(f"usage: `{usage(name)}`")
        target = args[0] if args and args[0].lower() not in _ALL else None
        return Command(name, target=target)
    if name == "run":
        if len(args) != 1:
            raise InputError(f"usage: `{usage(name)}`")
        return Command(name, target=args[0])
    # ask
    if not rest:
        raise InputError(f"usage: `{usage(name)}`")
    return Command(name, text=rest)
