"""``auditml mode-cache``: what ``grad_sample_mode: auto`` chose on this machine, and why.

Prints the cache file (:mod:`auditml.training.grad_sample_cache`): each set-up's chosen mode, the
median step time of every mode measured, how many rounds decided it and how long ago. With
``--clear`` the file is removed (only a mode cache: a file of anything else is refused), and
the next DP run measures again.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from auditml.errors import ConfigError
from auditml.training.grad_sample_cache import MAX_AGE_DAYS, ModeCache


def show_mode_cache(console: Console, *, clear: bool = False, cache: ModeCache | None = None
                    ) -> int:
    """Print (or, with ``clear``, remove) the mode cache; the exit code (0)."""
    cache = cache if cache is not None else ModeCache()
    if clear:
        try:
            removed = cache.clear()
        except OSError as error:
            raise ConfigError(f"{error}; set AUDITML_GRAD_SAMPLE_MODE_CACHE to the mode cache "
                              "you mean, or remove the file yourself") from None
        console.print(f"removed {cache.path}: the next DP run measures the modes again"
                      if removed else f"no mode cache at {cache.path}", highlight=False)
        return 0
    entries = cache.entries()
    if cache.problem is not None:
        console.print(f"note: {cache.problem}", highlight=False, markup=False)
    if not entries:
        console.print(f"no cached mode choice in {cache.path}", highlight=False, markup=False)
        return 0
    table = Table(title=f"grad_sample_mode: auto, cached in {cache.path}", title_justify="left")
    for header in ("set-up", "mode", "DP step (median)", "rounds", "measured"):
        table.add_column(header)
    for text, choice in entries.items():
        age = choice.age_days()
        table.add_row(
            text, choice.mode,
            ", ".join(f"{mode} {seconds * 1e3:.1f} ms"
                      for mode, seconds in choice.step_seconds.items()),
            str(choice.rounds),
            f"{age:.1f} days ago" + (" (expired: measured again)" if age > MAX_AGE_DAYS else ""),
        )
    console.print(table)
    return 0
