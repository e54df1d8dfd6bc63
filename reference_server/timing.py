"""``--timing-headers``: when the server first put each job's final state on a socket.

The detection-lag benchmark measures from a finished job's ``Job-Finished-At`` to the moment
the client's wait returned; ``Job-Answered-At`` (the server's clock right after the transport
write of the job's first final answer: a status answer, a held submission's answer or the
``complete`` event of a stream) splits that lag into the server's part and the client's
(``docs/protocol.md``, ``timing_headers``). Off by default; nothing here runs without it.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

__all__ = ["ANSWERED_HEADER", "AnswerTimes", "FINISHED_HEADER"]

#: The job's end, epoch seconds to the microsecond.
FINISHED_HEADER = "Job-Finished-At"
#: When the job's first final answer was written, epoch seconds to the microsecond.
ANSWERED_HEADER = "Job-Answered-At"


class AnswerTimes:
    """The first final answer's write time of the most recent :attr:`LIMIT` jobs.

    Args:
        clock: the server's wall clock (the one ``Job-Finished-At`` comes from).
    """

    #: Jobs remembered; the oldest are forgotten beyond it.
    LIMIT = 10_000

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._at: dict[str, float] = {}

    def record(self, job_id: str) -> None:
        """Note now as the job's first final answer (later answers keep the first time)."""
        if job_id in self._at:
            return
        self._at[job_id] = self._clock()
        if len(self._at) > self.LIMIT:
            del self._at[next(iter(self._at))]

    def header(self, job_id: str) -> dict[str, str]:
        """``{"Job-Answered-At": ...}`` once the job has been answered final, else ``{}``."""
        at = self._at.get(job_id)
        return {} if at is None else {ANSWERED_HEADER: f"{at:.6f}"}

    async def send(self, request: web.Request, response: web.StreamResponse, job_id: str) -> None:
        """Write ``response`` now (head and body; aiohttp then finds it sent) and note the
        time for ``job_id``."""
        await response.prepare(request)
        await response.write_eof()
        self.record(job_id)
