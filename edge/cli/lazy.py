"""Command groups that import each command's module only when it is used or listed."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import click


class LazyGroup(click.Group):
    """A group whose commands named in ``lazy`` (name -> ``(module, attribute)``) are
    imported when the command runs or ``--help`` lists it; commands added the usual way
    (``@group.command``) sit beside them. A command loads its own stack, not its
    neighbours' (issue 18: the memory of a camera worker)."""

    def __init__(
        self, *args: Any, lazy: Mapping[str, tuple[str, str]] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: Mapping[str, tuple[str, str]] = lazy if lazy is not None else {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        module, name = self.lazy[cmd_name]
        command: click.Command = getattr(importlib.import_module(module), name)
        return command
