"""Per-epoch progress: a rich bar on a terminal, plain log lines otherwise."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class EpochProgress:
    """One bar per epoch over its batches, with loss, accuracy and ε spent so far."""

    def __init__(self, console: Console | None, epochs: int, dp_enabled: bool) -> None:
        """``console=None`` shows nothing (reference models train silently)."""
        self.console = console
        self.epochs = epochs
        self.dp_enabled = dp_enabled
        self._progress: Progress | None = None
        if console is not None and console.is_terminal:
            self._progress = Progress(
                TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.4f}  acc {task.fields[acc]:.1%}"),
                TextColumn("{task.fields[eps]}"),
                TimeElapsedColumn(),
                console=console,
            )
        self._task: int | None = None

    def __enter__(self) -> EpochProgress:
        if self._progress is not None:
            self._progress.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.__exit__(kind, error, trace)

    def start_epoch(self, epoch: int, batches: int, epsilon: float | None) -> None:
        if self._progress is not None:
            self._task = self._progress.add_task(
                "train", total=batches, epoch=epoch, epochs=self.epochs, loss=0.0, acc=0.0,
                eps=self._eps_text(epsilon),
            )

    def advance(self, loss: float, acc: float) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=1, loss=loss, acc=acc)

    def end_epoch(
        self,
        epoch: int,
        loss: float,
        train_acc: float,
        val_acc: float | None,
        epsilon: float | None,
    ) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(
                self._task, loss=loss, acc=train_acc, eps=self._eps_text(epsilon)
            )
            return
        if self.console is None:
            return
        val_text = f"{val_acc:.1%}" if val_acc is not None else "—"
        self.console.print(
            f"epoch {epoch}/{self.epochs}  loss={loss:.4f}  train_acc={train_acc:.1%}  "
            f"val_acc={val_text}{'  ' + self._eps_text(epsilon) if self.dp_enabled else ''}",
            highlight=False,
        )

    def _eps_text(self, epsilon: float | None) -> str:
        return f"ε={epsilon:.2f}" if self.dp_enabled and epsilon is not None else ""
