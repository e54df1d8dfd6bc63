"""Dialects: pure interpretation of submit responses, status responses and SSE events.

A dialect turns ``(status code, headers, body, request URL)`` into a :class:`JobStatus` or a
:class:`Submission`, or raises one of our typed errors (``ProtocolError``,
``JobNotFoundError``, ``JobExpiredError``, ``SubmissionRejectedError``) — never anything
else, whatever the server sends. The parts:

- ``_fields``: the state vocabulary (:func:`parse_state`) and where each field lives;
- ``_answer``: one answer parsed once, and the snapshot built from it;
- ``_base``: the :class:`Dialect` protocol, :class:`Submission`, the shared routing;
- one module per family (``_reference``, ``_status_code``, ``_microsoft``, ``_arm``,
  ``_google``) and ``_auto``, which recognises them per answer; ``_names``: names;
- ``_declarative`` (with ``_spec``): any JSON job API described as data, and ``_presets``:
  such descriptions of Replicate, fal, RunPod, OpenAI Batch and AssemblyAI.

| dialect              | a 200/201 status answer is             | a 500 is a failed job when   |
| -------------------- | -------------------------------------- | ---------------------------- |
| ``ReferenceDialect`` | a status document (required)           | the body's state is failed   |
| ``StatusCodeDialect``| the result itself                      | the body has a failed state  |
|                      |                                        | or an ``error`` object       |
| ``MicrosoftDialect`` | an operation document (``status``)     | the body's state is failed   |
| ``GoogleDialect``    | a ``google.longrunning.Operation``     | never                        |
| ``ArmDialect``       | a status document, a resource with     | the body's state is failed   |
|                      | ``provisioningState``, else the result |                              |
| ``AutoDialect``      | recognised per answer (above); a       | the body's state is failed   |
|                      | completed document that names no       |                              |
|                      | result is itself the result; an HTML   |                              |
|                      | page is a ``ProtocolError``            |                              |
| ``DeclarativeDialect`` | a status document; once completed, | the body's state is failed |
| and the presets        | its ``output`` (or ``result_url``) |                            |

Any other 500 is a transient fault for the retry layer: :func:`is_job_failure_response` tells
them apart (equivalently, ``interpret_status`` raises ``ProtocolError`` for it).

In every dialect a submission answer that states a running job and names nothing to follow
it by is a ``NoStatusUrlError``, never a result; a GET answered 202 without a monitor is
polled at the same URL.
"""

from __future__ import annotations

from ._arm import ArmDialect
from ._auto import AutoDialect, is_job_failure_response
from ._base import (
    FINAL_STATE_VIA,
    Dialect,
    DialectBase,
    FinalStateVia,
    MonitorKind,
    Submission,
    monitor_move,
    with_final_state_via,
)
from ._declarative import DeclarativeDialect, cancel_method_of, result_failure_of
from ._fields import parse_state
from ._google import GoogleDialect
from ._microsoft import MicrosoftDialect
from ._names import DIALECT_NAMES, dialect_from
from ._presets import PRESETS, preset
from ._reference import ReferenceDialect
from ._rejections import rejection_error
from ._status_code import StatusCodeDialect

__all__ = [
    "DIALECT_NAMES",
    "FINAL_STATE_VIA",
    "PRESETS",
    "ArmDialect",
    "AutoDialect",
    "DeclarativeDialect",
    "Dialect",
    "DialectBase",
    "FinalStateVia",
    "GoogleDialect",
    "MicrosoftDialect",
    "MonitorKind",
    "ReferenceDialect",
    "StatusCodeDialect",
    "Submission",
    "cancel_method_of",
    "dialect_from",
    "is_job_failure_response",
    "monitor_move",
    "parse_state",
    "preset",
    "rejection_error",
    "result_failure_of",
    "with_final_state_via",
]
