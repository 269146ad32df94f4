"""`p2pdiag explain CODE`: the page that explains a finding code, from the installed package.

The pages live in docs/verdicts/ (their one home, browsed in the repository); `p2pdiag/verdicts` is a
symlink to it, and the build copies the pages into the package (pyproject's package-data). The codes
are read from the page names, not from the diagnosis's `Code` enum (a test holds the two to each
other): explaining a code loads no diagnosis, trace or network module.
"""

from __future__ import annotations

import difflib
import sys
from importlib import resources
from importlib.abc import Traversable

import typer

from p2pdiag.errors import UsageError

INDEX = "README.md"
CLOSE_CODES = 4  # at most this many suggestions for an unknown code


def pages() -> Traversable:
    return resources.files("p2pdiag") / "verdicts"


def codes() -> list[str]:
    """Every finding code that has a page, sorted."""
    return sorted(p.name[:-3] for p in pages().iterdir() if p.name.endswith(".md") and p.name != INDEX)


def page(code: str) -> str:
    """The page of CODE; a UsageError naming the close codes when there is none."""
    wanted = code.strip().lower().removesuffix(".md")
    known = codes()
    if wanted not in known:
        close = difflib.get_close_matches(wanted, known, n=CLOSE_CODES, cutoff=0.5)
        if not close:  # a word of a code ("voucher", "symmetric")
            close = [c for c in known if wanted and wanted in c][:CLOSE_CODES]
        hint = f"; close: {', '.join(close)}" if close else ""
        raise UsageError(f"no finding code {code!r}{hint} (`p2pdiag explain --list` lists all {len(known)})")
    return (pages() / f"{wanted}.md").read_text(encoding="utf-8")


def title(text: str) -> str:
    """A page's one-line summary: its heading after the code (`# `code`: what it means`)."""
    first = text.split("\n", 1)[0].lstrip("# ").strip()
    return first.split(":", 1)[1].strip() if ":" in first else first


def explain(
    code: str | None = typer.Argument(None, metavar="CODE", show_default=False,
                                      help="A finding code, as a verdict shows it (`more: p2pdiag explain CODE`)."),
    list_codes: bool = typer.Option(False, "--list", help="List every finding code with its one-line summary."),
) -> int:
    """Explain a finding code: what p2pdiag saw, what it means, usual causes, how to confirm and fix it."""
    if list_codes:
        if code is not None:
            raise UsageError("give a CODE or --list, not both")
        known = codes()
        width = max(map(len, known))
        for c in known:
            print(f"{c:<{width}}  {title((pages() / f'{c}.md').read_text(encoding='utf-8'))}")
        return 0
    if code is None:
        raise UsageError("give a finding code (`p2pdiag explain relay-limited`), or --list for all of them")
    text = page(code)
    if sys.stdout.isatty():  # a person reading: rendered; piped, the Markdown itself
        from rich.markdown import Markdown

        from p2pdiag.cli import common

        common.console().print(Markdown(text))
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()
    return 0
