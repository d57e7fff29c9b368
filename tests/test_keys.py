"""Redis key names: every key of a namespace carries its hash tag (one Cluster slot
per namespace), and no two builders name the same key."""

from __future__ import annotations

import inspect

import pydantic
from hypothesis import given
from hypothesis import strategies as st

from feedbackguard import keys
from feedbackguard.events import FeedbackEvent

_NAMESPACED = [
    fn
    for name, fn in vars(keys).items()
    if inspect.isfunction(fn)
    and not name.startswith("_")
    and list(inspect.signature(fn).parameters)[:1] == ["namespace"]
]
_GLOBAL = [
    fn
    for name, fn in vars(keys).items()
    if inspect.isfunction(fn) and not name.startswith("_") and not inspect.signature(fn).parameters
]
_names = st.text(st.characters(blacklist_characters="{}"), min_size=1, max_size=20)


def _key(fn: object, namespace: str) -> str:
    params = list(inspect.signature(fn).parameters.values())  # type: ignore[arg-type]
    args: list[object] = [namespace]
    for param in params[1:]:
        args.append(True if param.annotation in ("bool", bool) else "x")
    return str(fn(*args))  # type: ignore[operator]


@given(namespace=_names)
def test_every_key_of_a_namespace_carries_its_hash_tag(namespace: str) -> None:
    for fn in _NAMESPACED:
        key = _key(fn, namespace)
        assert key.startswith(f"{keys.PREFIX}:{{{namespace}}}:"), fn.__name__


@given(namespace=_names)
def test_no_two_key_builders_name_the_same_key(namespace: str) -> None:
    found = [_key(fn, namespace) for fn in _NAMESPACED if fn is not keys.ns]
    found += [str(fn()) for fn in _GLOBAL]
    assert len(found) == len(set(found))


def test_global_keys_are_outside_every_namespace() -> None:
    assert _GLOBAL
    for fn in _GLOBAL:
        key = str(fn())
        tagged = key.startswith(f"{keys.PREFIX}:{{")
        tag = key.partition("{")[2].partition("}")[0]
        assert not tagged or not _namespace_name(tag), fn.__name__


def _namespace_name(name: str) -> bool:
    try:
        FeedbackEvent(namespace=name, kind="label", account_id="a", item_id="i", value=1)
    except pydantic.ValidationError:
        return False
    return True
