"""Test helpers for code that consumes async request-reply APIs: a scripted fake server and a
virtual clock.

:class:`FakeAsyncAPI` answers like an async request-reply server (the reference protocol, in
either dialect) without any socket: it is a set of `respx <https://lundberg.github.io/respx/>`_
routes. Each job route follows a script declared with a fluent API, and every request is
recorded. :class:`FakeClock` replaces the client's clock, so a job scripted with long
``Retry-After`` hints completes in milliseconds.

Example:
    >>> import httpx
    >>> from asyncreply_client.testing import FakeAsyncAPI
    >>> api = FakeAsyncAPI("https://api.example.test")
    >>> script = (
    ...     api.job("/jobs")
    ...     .pending(retry_after=0)
    ...     .pending(retry_after=0)
    ...     .progress(0.5, message="half way")
    ...     .completed(result={"answer": 42})
    ... )
    >>> with api, httpx.Client(base_url=api.base_url) as http:
    ...     submitted = http.post("/jobs", json={"type": "report", "input": {}})
    ...     location = submitted.headers["Location"]
    ...     states = [http.get(location).json()["status"] for _ in range(3)]
    ...     done = http.get(location, follow_redirects=True).json()
    >>> submitted.status_code, states, done
    (202, ['pending', 'pending', 'processing'], {'answer': 42})
    >>> len(script.jobs[0].polls)
    4

With the client SDK, let the fake make the client (its clock makes sleeps take no time), or
pass the fake's clock to your own::

    with api.client() as client:
        assert client.run("/jobs", json={...}) == {"answer": 42}
    with api, Client(api.base_url, clock=api.clock) as client:
        ...

The package: :mod:`._script` (the fluent job scripts), :mod:`._routes` (what the fake answers),
:mod:`._api` (the routes and the job registry), :mod:`._clock` (the virtual clock),
:mod:`._mode` (the retry testing switch), :mod:`._server` (the reference server behind the
pytest plugin's fixtures).
"""

from __future__ import annotations

from ._api import FakeAsyncAPI, RealClockWarning
from ._clock import FakeClock
from ._mode import set_testing
from ._routes import FakeDialect
from ._script import FakeJob, JobScript

__all__ = [
    "FakeAsyncAPI",
    "FakeClock",
    "FakeDialect",
    "FakeJob",
    "JobScript",
    "RealClockWarning",
    "set_testing",
]
