"""The one rule that types a setting, whatever its source: a run or suite file, a run's ``config.json``, a saved
prior's ``settings.json``, ``--set`` and the Python API (:func:`typed`, :func:`typed_fields`)."""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import types
import typing
from typing import Any

from nppac.errors import NppacError

BOOL_TEXTS: dict[str, bool] = {"true": True, "1": True, "yes": True, "on": True,
                               "false": False, "0": False, "no": False, "off": False}
"""How ``--set`` spells a boolean (in any case); a file or the API gives a real true or false."""

_NAMES: dict[Any, tuple[str, str]] = {bool: ("true or false", "booleans"),
                                      int: ("a whole number", "whole numbers"),
                                      float: ("a finite number", "finite numbers"),
                                      str: ("a string", "strings")}
_WRONG = object()
UNBOUNDED = frozenset({"score_clip"})
"""The settings that take ±inf, with a meaning of their own (awac's score_clip: no clip); no setting takes NaN."""


def typed(key: str, value: Any, hint: Any) -> Any:
    """``value`` as setting ``key`` of declared type ``hint``, whatever its source (``--set`` once :func:`parsed`).

    A boolean is true or false; a whole number an integer or a float without a fraction (``1e6``), never a
    boolean; a number an integer or a float; a ``Literal`` one of its values; a tuple a list (or tuple) of such
    items, of its length where it has one; a table a dict; an optional setting also None. Anything else is
    refused in one line naming the key, the value and the type expected.
    """
    converted = _convert(value, hint)
    numbers_in = converted if isinstance(converted, tuple) else (converted,)
    # NaN means no setting; ±inf only where a setting says what it means (awac's score_clip: no clip).
    if converted is _WRONG or any(isinstance(v, float) and not math.isfinite(v)
                                  and (key not in UNBOUNDED or math.isnan(v)) for v in numbers_in):
        raise NppacError(f"{key} = {value!r}: expected {_expected(hint)}")
    return converted


def parsed(key: str, text: str, hint: Any) -> Any:
    """A ``--set`` value from its text, then typed by :func:`typed`: ``none``, ``null`` or nothing for an optional
    setting, a form of :data:`BOOL_TEXTS` for a boolean, ``a,b`` for a tuple."""
    try:
        return typed(key, _from_text(text, hint), hint)
    except NppacError:
        forms = " (or 1/0, yes/no, on/off)" if _required(hint) is bool else ""
        raise NppacError(f"--set {key}={text!r}: expected {_expected(hint)}{forms}") from None


def typed_fields(settings: Any, declared_by: type | None = None) -> None:
    """Every field of the dataclass ``settings`` typed by its declaration in ``declared_by`` (default: its class)
    (:func:`typed`), in place."""
    declared = field_types(declared_by or type(settings))
    for f in dataclasses.fields(settings):
        object.__setattr__(settings, f.name, typed(f.name, getattr(settings, f.name), declared[f.name]))


@functools.cache
def field_types(settings: type) -> dict[str, Any]:
    return typing.get_type_hints(settings)


def _optional(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)


def _required(hint: Any) -> Any:
    """``X`` of ``X | None``; other hints as they are."""
    return next(a for a in typing.get_args(hint) if a is not type(None)) if _optional(hint) else hint


def _convert(value: Any, hint: Any) -> Any:
    if value is None:
        return None if _optional(hint) else _WRONG
    hint = _required(hint)
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, (list, tuple)):
            return _WRONG
        items = [args[0]] * len(value) if args[-1] is Ellipsis else list(args)
        out = tuple(_convert(v, item) for v, item in zip(value, items))
        return _WRONG if len(items) != len(value) or any(v is _WRONG for v in out) else out
    if typing.get_origin(hint) is typing.Literal:
        return value if any(type(value) is type(a) and value == a for a in args) else _WRONG
    if typing.get_origin(hint) is dict:
        return dict(value) if isinstance(value, dict) and all(isinstance(k, str) for k in value) else _WRONG
    if hint is bool or isinstance(value, bool):
        return value if hint is bool and isinstance(value, bool) else _WRONG
    if hint is int and isinstance(value, numbers.Integral):
        return int(value)
    if hint is int and isinstance(value, numbers.Real) and float(value).is_integer():
        return int(float(value))
    if hint is float and isinstance(value, numbers.Real):
        return float(value)
    return value if hint is str and isinstance(value, str) else _WRONG


def _expected(hint: Any) -> str:
    required = _required(hint)
    args = typing.get_args(required)
    if typing.get_origin(required) is tuple and len(set(args)) > 1 and Ellipsis not in args:
        name = f"a list of {' and '.join(_NAMES[a][0] for a in args)}"
    elif typing.get_origin(required) is tuple:
        name = f"a list of {'' if args[-1] is Ellipsis else f'{len(args)} '}{_NAMES[args[0]][1]}"
    else:
        name = ("a table" if typing.get_origin(required) is dict else f"one of: {', '.join(map(str, args))}"
                if typing.get_origin(required) is typing.Literal else _NAMES[required][0])
    return f"{name.replace(' or ', ', ')} or null" if _optional(hint) else name


def _from_text(text: str, hint: Any) -> Any:
    """A ``--set`` text as the value it spells for ``hint`` (left as text where it spells none)."""
    if _optional(hint) and text.lower() in ("none", "null", ""):
        return None
    hint = _required(hint)
    if hint is bool:
        return BOOL_TEXTS.get(text.lower(), text)
    if typing.get_origin(hint) is tuple:
        return [_from_text(x.strip(), typing.get_args(hint)[0]) for x in text.split(",") if x.strip()]
    for number in (int, float) if hint in (int, float) else ():
        try:
            return number(text)
        except ValueError:
            pass
    return text
