"""The public surface: exactly these names, and sync/async twins with the same methods."""

from __future__ import annotations

import inspect

import asyncreply_client
from asyncreply_client import AsyncClient, AsyncOperation, Client, Operation

EXPECTED = {
    "Adaptive",
    "ArmDialect",
    "AsyncClient",
    "AsyncOperation",
    "AsyncReplyError",
    "AuthenticationError",
    "AutoDialect",
    "CancelNotSupportedError",
    "Client",
    "Clock",
    "DeclarativeDialect",
    "Dialect",
    "ExponentialBackoff",
    "FixedInterval",
    "GoogleDialect",
    "HttpResponse",
    "InvalidTokenError",
    "JobCancelledError",
    "JobError",
    "JobExpiredError",
    "JobFailedError",
    "JobNotFoundError",
    "JobOutcomeError",
    "JobState",
    "JobStatus",
    "LongPolling",
    "MicrosoftDialect",
    "NoStatusUrlError",
    "Operation",
    "OperationMetadata",
    "PermissionDeniedError",
    "PollDecision",
    "PollObservation",
    "PollSchedule",
    "PollingPolicy",
    "Progress",
    "ProtocolError",
    "ReferenceDialect",
    "RequestRejectedError",
    "ResultFile",
    "RetryEvent",
    "RetryPolicy",
    "SSEOptions",
    "StatusCodeDialect",
    "Submission",
    "SubmissionAuthenticationError",
    "SubmissionPermissionDeniedError",
    "SubmissionRejectedError",
    "SystemClock",
    "TransportError",
    "WaitTimeoutError",
    "retry_if_transient",
}


def test_exported_names() -> None:
    assert set(asyncreply_client.__all__) == EXPECTED
    assert list(asyncreply_client.__all__) == sorted(asyncreply_client.__all__)
    for name in EXPECTED:
        value = getattr(asyncreply_client, name)
        assert value.__doc__, f"{name} has no docstring"


def _public(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_") and callable(member)
    }


def _properties(cls: type) -> set[str]:
    return {n for n, m in inspect.getmembers(cls) if isinstance(m, property)}


def test_client_twins_have_the_same_methods_and_parameters() -> None:
    sync, both = _public(Client), _public(AsyncClient)
    assert set(sync) - {"close"} == set(both) - {"aclose"}
    for name in set(sync) - {"close"}:
        assert sync[name].parameters.keys() == both[name].parameters.keys(), name
    assert inspect.signature(Client.__init__).parameters.keys() == (
        inspect.signature(AsyncClient.__init__).parameters.keys()
    )
    for name in ("submit", "run"):
        assert inspect.iscoroutinefunction(getattr(AsyncClient, name))


def test_operation_twins_have_the_same_methods_and_parameters() -> None:
    sync, both = _public(Operation), _public(AsyncOperation)
    assert set(sync) == set(both)
    for name in sync:
        assert sync[name].parameters.keys() == both[name].parameters.keys(), name
    assert _properties(Operation) == _properties(AsyncOperation)
    assert {"id", "status_url", "status"} <= _properties(Operation)
    for name in ("refresh", "wait", "result", "cancel", "retry", "download"):
        assert inspect.iscoroutinefunction(getattr(AsyncOperation, name)), name
    assert inspect.isasyncgenfunction(AsyncOperation.watch)


def test_version_comes_from_the_installed_metadata() -> None:
    from importlib.metadata import version

    assert asyncreply_client.__version__ == version("asyncreply")
    assert "__version__" not in asyncreply_client.__all__  # a dunder, not a public name
