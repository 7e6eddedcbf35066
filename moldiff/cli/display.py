"""Terminal output shared by commands: the metrics table and progress bars (on stderr)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

METRICS = [
    ("atom_stability", "atom stability"),
    ("mol_stability", "molecule stability"),
    ("validity", "validity"),
    ("uniqueness", "uniqueness"),
    ("valid_x_unique", "valid × unique"),
    ("novelty", "novelty"),
    ("connectivity", "one piece"),
    ("valid_connected", "valid & one piece"),
]


def print_summary(summary: dict, title: str = "EDM metrics") -> None:
    """The evaluator's fractions as a percentage table, then the counts."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, label in METRICS:
        if key in summary:
            value = summary[key]
            table.add_row(label, "–" if value is None else f"{100 * value:.1f}%")
    Console(highlight=False).print(table)
    print(f"{summary['n']} molecules ({summary.get('n_rejected', 0)} unreadable), {summary['n_atoms']} atoms, "
          f"{summary['n_valid']} valid, {summary['n_unique']} unique")  # fmt: skip


GRAPH_METRICS = [
    ("validity", "valid as written"),
    ("connectivity", "one piece"),
    ("valid_connected", "valid & one piece"),
    ("atom_stability", "atom stability (charge-aware)"),
    ("mol_stability", "molecule stability (charge-aware)"),
    ("geometry_consistency", "bonds agree with coordinates"),
    ("valid_connected_consistent", "valid, one piece & agree"),
    ("posebusters_pass", "PoseBusters mol"),
    ("uniqueness", "uniqueness"),
    ("novelty", "novelty"),
]


def print_graph_summary(summary: dict, title: str = "graph metrics") -> None:
    """The graph evaluator's fractions with standard errors, the counts, xTB and the EDM protocol beside."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for name in ("metric", "value", "± SE"):
        table.add_column(name, justify="left" if name == "metric" else "right")
    for key, label in GRAPH_METRICS:
        if summary.get(key) is not None:
            se = summary.get(f"{key}_se")
            table.add_row(label, f"{100 * summary[key]:.1f}%", "" if se is None else f"{100 * se:.1f}")
    Console(highlight=False).print(table)
    print(f"{summary['n']} molecules ({summary['n_rejected']} unreadable), {summary['n_valid']} valid, "
          f"{summary['n_unique']} unique")  # fmt: skip
    if "xtb" in summary and summary["xtb"].get("median_delta_e") is not None:
        x = summary["xtb"]
        print(f"GFN2-xTB ΔE_relax over {x['n'] - x['n_failed']} molecules: median {x['median_delta_e']:.1f} "
              f"± {x['median_delta_e_se']:.1f}, mean {x['mean_delta_e']:.1f} kcal/mol "
              f"({x['n_unconverged']} not converged, {x['n_failed']} failed)")  # fmt: skip
    if "edm" in summary:
        e = summary["edm"]
        print(f"EDM protocol on the coordinates: atom stability {100 * e['atom_stability']:.1f}%, molecule stability "
              f"{100 * e['mol_stability']:.1f}%, validity {100 * e['validity']:.1f}%")  # fmt: skip


@contextmanager
def progress_bar(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """Yields ``advance(k)``; draws a bar on stderr when it is a terminal, else prints milestones
    (stdout stays free for ``--json``)."""
    if sys.stderr.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

        columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TimeRemainingColumn())  # fmt: skip
        with Progress(*columns, transient=True) as progress:
            task = progress.add_task(label, total=total)
            yield lambda k: progress.advance(task, k)
        return
    done = [0]

    def advance(k: int) -> None:
        done[0] += k
        print(f"{label}: {done[0]}/{total}", file=sys.stderr, flush=True)

    yield advance
