"""Dialects by name: what ``Client(dialect="google")``, the CLI and the contract checker accept."""

from __future__ import annotations

import functools
from collections.abc import Callable

from ._arm import ArmDialect
from ._auto import AutoDialect
from ._base import Dialect
from ._google import GoogleDialect
from ._microsoft import MicrosoftDialect
from ._presets import PRESETS, preset
from ._reference import ReferenceDialect
from ._status_code import StatusCodeDialect

__all__ = ["DIALECT_NAMES", "dialect_from"]

_FACTORIES: dict[str, Callable[[], Dialect]] = {
    "auto": AutoDialect,
    "reference": ReferenceDialect,
    "status-code": StatusCodeDialect,
    "microsoft": MicrosoftDialect,
    "google": GoogleDialect,
    "arm": ArmDialect,
    **{name: functools.partial(preset, name) for name in PRESETS},
}
#: The names a dialect may be given by, in the order the docs list them.
DIALECT_NAMES: tuple[str, ...] = tuple(_FACTORIES)
_METHODS = ("interpret_submit", "interpret_status", "interpret_event")


def dialect_from(value: object) -> Dialect:
    """The dialect ``value`` designates: ``None`` (auto), a name, or a dialect object.

    Names are those of :data:`DIALECT_NAMES` (case and surrounding blanks ignored): the
    families and the presets (``"replicate"``, ``"fal"``, ``"runpod"``, ``"openai-batch"``,
    ``"assemblyai"``); each gives a new dialect with default settings.

    Raises:
        ValueError: an unknown name.
        TypeError: neither ``None``, a string nor an object with the dialect's methods.

    Example:
        >>> dialect_from("google").name, dialect_from(None).name
        ('google', 'auto')
    """
    if value is None:
        return AutoDialect()
    if isinstance(value, str):
        factory = _FACTORIES.get(value.strip().lower())
        if factory is None:
            raise ValueError(
                f"unknown dialect {value!r}; expected one of {', '.join(DIALECT_NAMES)} "
                "or a Dialect object"
            )
        return factory()
    if isinstance(value, type) or not all(
        callable(getattr(value, method, None)) for method in _METHODS
    ):
        raise TypeError(
            f"dialect must be a name ({', '.join(DIALECT_NAMES)}) or a Dialect object with "
            f"{', '.join(_METHODS)}; got {type(value).__name__}"
        )
    return value  # type: ignore[return-value]  # checked structurally above
