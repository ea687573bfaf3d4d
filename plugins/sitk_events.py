"""SimpleITK commands (``AddCommand``) for ``.mlc`` reads and writes.

SimpleITK fires Start, Progress and End events from its compiled ITK pipeline, which a
``.mlc`` read or write bypasses. The hook's classes therefore remember every command added
(and still register it with SimpleITK, so other files and the Delete event work as before)
and fire Start, Progress (0 .. 1, readable with ``GetProgress()``), End, Delete (SimpleITK
fires it when the ITK filter made for one Execute goes away) and Any themselves.
Commands are remembered weakly (SimpleITK's own registration keeps them alive), so a
command that refers back to its reader does not keep the reader from being deleted.
"""

from __future__ import annotations

import contextlib
import inspect
import weakref


class EventsMixin:
    """Commands of a SimpleITK process object, also fired for ``.mlc`` work."""

    _sitk = None  # set on each built class

    def __init__(self, *args):
        super().__init__(*args)
        self._mlc_commands: list = []
        self._mlc_progress: float | None = None  # None: SimpleITK's own GetProgress answers

    def AddCommand(self, event, command):
        result = super().AddCommand(event, command)
        self._mlc_commands.append((event, _weak(command)))
        return result

    def RemoveAllCommands(self):
        super().RemoveAllCommands()
        self._mlc_commands.clear()

    def GetProgress(self):
        return super().GetProgress() if self._mlc_progress is None else self._mlc_progress

    def _mlc_fire(self, event) -> None:
        for wanted, ref in list(self._mlc_commands):
            command = ref()
            if command is not None and wanted in (event, self._sitk.sitkAnyEvent):
                command.Execute() if hasattr(command, "Execute") else command()

    def _native(self) -> None:
        """The next answers come from SimpleITK's own pipeline."""
        self._mlc_progress = None

    @contextlib.contextmanager
    def _mlc_events(self):
        """Start and Progress(0) now, End (after Progress(1)) if the block succeeds, Delete
        in any case; yields ``report(fraction)`` for the progress in between."""
        sitk = self._sitk

        def report(fraction: float) -> None:
            fraction = min(1.0, max(float(fraction), self._mlc_progress or 0.0))
            self._mlc_progress = fraction
            self._mlc_fire(sitk.sitkProgressEvent)

        self._mlc_progress = 0.0
        self._mlc_fire(sitk.sitkStartEvent)
        try:
            report(0.0)
            yield report
            if self._mlc_progress < 1.0:
                report(1.0)
            self._mlc_fire(sitk.sitkEndEvent)
        finally:
            self._mlc_fire(sitk.sitkDeleteEvent)


def _weak(command):
    """A weak reference to ``command`` (a strong one where Python allows no weak one)."""
    try:
        return weakref.WeakMethod(command) if inspect.ismethod(command) else weakref.ref(command)
    except TypeError:
        return lambda: command
