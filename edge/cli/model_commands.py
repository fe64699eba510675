"""``edge models``: list, fetch and verify models and sample recordings."""

from __future__ import annotations

from pathlib import Path

import click

from edge import assets


@click.group("models")
def models_group() -> None:
    """Models and sample recordings named in models/manifest.yaml."""


@models_group.command("list")
def list_models() -> None:
    """List manifest entries and whether a verified copy is available."""
    for name, item in sorted(assets.manifest().items()):
        try:
            where = str(assets.resolve(name, download=False))
        except assets.ModelError:
            where = "not available (run `edge models fetch`)"
        click.echo(f"{name:32} {item.kind:8} {item.licence:12.12} {where}")


@models_group.command("fetch")
@click.argument("names", nargs=-1)
@click.option(
    "--assets",
    "assets_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Import from this folder (laid out like the manifest's paths) instead of downloading.",
)
def fetch_models(names: tuple[str, ...], assets_dir: Path | None) -> None:
    """Import or download NAMES (default: the default detector and sample recording),
    verifying each checksum, into the model store."""
    for name in names or ("yolox_nano_416x416", "pets09_s2l1_view001"):
        path = assets.fetch(name, assets_dir)
        click.echo(f"{name}: verified, at {path}")
