"""The process-wide testing switch: retries without backoff (like ``stamina.set_testing``)."""

from __future__ import annotations

from types import TracebackType

from .. import _retry

__all__ = ["set_testing"]


class _TestingMode:
    """What :func:`set_testing` returns: restores the previous mode when used with ``with``."""

    __slots__ = ("_previous",)

    def __init__(self, previous: bool) -> None:
        self._previous = previous

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _retry.set_testing(self._previous)


def set_testing(on: bool = True) -> _TestingMode:
    """Turn the retry backoff off (``on=True``) or back on, process-wide, for test suites.

    Transient faults (429/502/503/504, a 500 that is not a job's state, network errors) are
    still retried as the client's :class:`~asyncreply_client.RetryPolicy` says, the same
    number of times, but without waiting between attempts (a server's ``Retry-After`` and a
    policy's own ``wait=`` included), so fault-injection tests run fast without a
    :class:`FakeClock`; a refused connection counts as an attempt at once (the policy's
    ``connect_for`` does not apply), so a test against a server that is down fails fast.
    It does not change polling intervals: pass a :class:`FakeClock` for those. Like
    ``stamina.set_testing``, call it once (e.g. in a ``conftest.py``), or use the returned
    object as a context manager, which restores the previous mode on exit.

    Args:
        on: ``True`` to retry without backoff, ``False`` to restore normal backoff.

    Returns:
        A context manager restoring the mode that was in force before the call.

    Example:
        In a ``conftest.py``::

            import pytest
            from asyncreply_client.testing import set_testing

            @pytest.fixture(autouse=True)
            def no_retry_backoff():
                with set_testing():
                    yield
    """
    previous = _retry.is_testing()
    _retry.set_testing(bool(on))
    return _TestingMode(previous)
