"""``perennial identity show``: which customer an identifier is, and why."""

from __future__ import annotations

from typing import Annotated

import typer

from perennial.cli.output import console
from perennial.config import load_settings
from perennial.ingest.identity_lookup import explain_identity, parse_identity

__all__ = ["identity_app"]

identity_app = typer.Typer(help="Inspect the identity graph.", no_args_is_help=True)


@identity_app.command("show")
def _show_command(
    identifier: Annotated[
        str, typer.Argument(help="TYPE:VALUE, e.g. phone:13812345678 or anonymous_id:dev-1.")
    ],
) -> None:
    """Show the customer an identifier resolves to, its cluster and the merge history."""
    settings = load_settings()
    explanation = explain_identity(
        settings, parse_identity(identifier, settings.default_phone_region)
    )
    customer = explanation.customer_id or "(anonymous: no known customer yet)"
    console.print(f"[bold]{explanation.node.key}[/] -> customer {customer}", highlight=False)
    console.print(f"cluster {explanation.cluster_id}, {len(explanation.members)} identifiers:")
    for kind, value, seen in explanation.members:
        console.print(
            f"  {kind}:{value}  (first seen {seen:%Y-%m-%d %H:%M} UTC)",
            highlight=False,
            markup=False,
        )
    if explanation.merges:
        console.print("merged because:")
    for merge in explanation.merges:
        console.print(
            f"  {merge['merged_at']:%Y-%m-%d %H:%M}  {merge['node_a']} + {merge['node_b']}: "
            f"{merge['reason']} ({merge['source_file']} line {merge['source_line']})",
            highlight=False,
            markup=False,
        )
    for conflict in explanation.conflicts:
        console.print(
            f"  refused: {conflict['node_a']} + {conflict['node_b']} would join customers "
            f"{conflict['customer_a']} and {conflict['customer_b']} "
            f"({conflict['source_file']} line {conflict['source_line']})",
            highlight=False,
            markup=False,
        )
