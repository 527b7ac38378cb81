"""Find a reward by the name a config gives it, and build it with the config's keyword arguments.

A name is looked up, in order, as
1. a built-in reward ("clip", "aesthetic", "oracle", or one added with `register_reward`),
2. `path/to/file.py:attr` (a Python file, relative to the working directory),
3. `package.module:attr` (an importable module),
4. a name published by an installed package under the entry-point group "t2i_gcpo.rewards".

The object found is turned into a reward by `build_reward`: a class or a factory function is
called with the keyword arguments; a function whose first three parameters are required
positional ones (images, prompts, metadata) is the reward itself, with any keyword arguments
bound to its remaining parameters; any other callable object is used as it is.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reward_models.base import RewardError, RewardFn

ENTRY_POINT_GROUP = "t2i_gcpo.rewards"
ACCEPTED_FORMS = (
    "a built-in name (e.g. 'clip')",
    "'path/to/file.py:attr'",
    "'package.module:attr'",
    f"a name published under the entry-point group {ENTRY_POINT_GROUP!r}",
)
BUILTIN_REWARDS: dict[str, Callable[..., RewardFn]] = {}
SHAPES_HINT = "run `t2i-gcpo toy build` to train the shapes world's models"


class RewardNotFoundError(RewardError):
    """A reward name that none of the accepted forms resolves."""


def register_reward(name: str) -> Callable[[Callable[..., RewardFn]], Callable[..., RewardFn]]:
    """Decorator: make a reward class or factory loadable as `name`. Re-running the same
    definition (a reloaded module, a notebook cell) replaces it; another definition under a taken
    name is an error."""

    def decorator(factory: Callable[..., RewardFn]) -> Callable[..., RewardFn]:
        old = BUILTIN_REWARDS.get(name)
        if old is not None and _qualified(old) != _qualified(factory):
            raise ValueError(
                f"reward name {name!r} is already registered to {_qualified(old)}; "
                f"cannot register {_qualified(factory)} under it"
            )
        BUILTIN_REWARDS[name] = factory
        return factory

    return decorator


def _qualified(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def load_reward(name: str, **kwargs: Any) -> RewardFn:
    """Resolve `name` (see the module docstring) and build the reward with `kwargs`."""
    return build_reward(name, resolve_reward(name), kwargs)


def resolve_reward(name: str) -> Any:
    """The object that `name` refers to: a built-in, a file or module attribute, or an entry
    point's target. Raises RewardNotFoundError listing what was tried."""
    if not isinstance(name, str) or not name:
        raise RewardNotFoundError(f"a reward name must be a non-empty string; got {name!r}")
    if name in BUILTIN_REWARDS:
        return BUILTIN_REWARDS[name]
    tried = [f"built-in rewards {sorted(BUILTIN_REWARDS)}: no such name"]
    source, colon, attr = name.rpartition(":")
    if colon and source.endswith(".py"):
        return _attr_from_file(name, source, attr, tried)
    if colon:
        return _attr_from_module(name, source, attr, tried)
    return _entry_point_target(name, tried)


def _not_found(name: str, tried: list[str]) -> RewardNotFoundError:
    lines = [f"reward {name!r} was not found. Tried:"]
    lines += [f"  - {attempt}" for attempt in tried]
    lines.append("Accepted forms: " + "; ".join(ACCEPTED_FORMS) + ".")
    return RewardNotFoundError("\n".join(lines))


def _attr_from_file(name: str, source: str, attr: str, tried: list[str]) -> Any:
    path = Path(source).expanduser()
    if not path.is_file():
        tried.append(f"file {source!r}: does not exist (looked at {path.resolve()})")
        raise _not_found(name, tried)
    module = _import_file(name, path.resolve())
    return _get_attr(name, module, f"file {source!r}", attr, tried)


def _import_file(name: str, path: Path) -> Any:
    """Execute a Python file as a fresh module (registered in sys.modules under a unique name)."""
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    module_name = f"t2i_gcpo_reward_file_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        del sys.modules[module_name]
        raise RewardError(
            f"reward {name!r}: running {path} raised {type(err).__name__}: {err}"
        ) from err
    return module


def _attr_from_module(name: str, module_name: str, attr: str, tried: list[str]) -> Any:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name is None or not (module_name + ".").startswith(err.name + "."):
            raise  # the module exists but one of its own imports is missing
        tried.append(f"module {module_name!r}: cannot be imported ({err})")
        raise _not_found(name, tried) from err
    return _get_attr(name, module, f"module {module_name!r}", attr, tried)


def _get_attr(name: str, module: Any, where: str, attr: str, tried: list[str]) -> Any:
    target = module
    for part in attr.split("."):
        if not part or not hasattr(target, part):
            public = sorted(k for k, v in vars(module).items() if callable(v) and k[0] != "_")
            tried.append(f"{where}: has no attribute {attr!r} (its callables: {public})")
            raise _not_found(name, tried)
        target = getattr(target, part)
    return target


def _entry_point_target(name: str, tried: list[str]) -> Any:
    points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    matches = {point.value: point for point in points if point.name == name}
    if not matches:
        published = sorted({point.name for point in points})
        tried.append(f"entry points in group {ENTRY_POINT_GROUP!r} {published}: no such name")
        raise _not_found(name, tried)
    if len(matches) > 1:
        raise RewardError(
            f"reward {name!r} is published by several installed packages under "
            f"{ENTRY_POINT_GROUP!r}: {sorted(matches)}; uninstall one or name the target "
            "as 'package.module:attr'"
        )
    return next(iter(matches.values())).load()


def is_reward_function(fn: Callable) -> bool:
    """True when the first three parameters of `fn` are required positional ones, as in
    fn(images, prompts, metadata, ...)."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    head = params[:3]
    return len(head) == 3 and all(
        p.kind in positional and p.default is inspect.Parameter.empty for p in head
    )


def _check_kwargs(name: str, fn: Callable, kwargs: dict, *leading: Any) -> None:
    """Raise RewardError when `fn` cannot take `kwargs` (after `leading` positional arguments)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    try:
        signature.bind_partial(*leading, **kwargs)
    except TypeError as err:
        raise RewardError(
            f"reward {name!r}: keyword arguments {sorted(kwargs)} do not fit "
            f"{getattr(fn, '__qualname__', fn)}{signature} ({err})"
        ) from err


def build_reward(name: str, target: Any, kwargs: dict[str, Any]) -> RewardFn:
    """Turn what a name resolved to into a reward callable (see the module docstring)."""
    function_like = inspect.isfunction(target) or inspect.ismethod(target)
    function_like = function_like or isinstance(target, functools.partial)
    if function_like and is_reward_function(target):
        _check_kwargs(name, target, kwargs, None, None, None)
        return functools.partial(target, **kwargs) if kwargs else target
    if inspect.isclass(target) or function_like:
        _check_kwargs(name, target, kwargs)
        reward = target(**kwargs)
    elif kwargs:
        raise RewardError(
            f"reward {name!r} is an already-built {type(target).__name__}; it takes no keyword "
            f"arguments, got {sorted(kwargs)}"
        )
    else:
        reward = target
    if not callable(reward):
        raise RewardError(
            f"reward {name!r} resolved to {type(reward).__name__}, which is not callable; expected "
            "a reward (images, prompts, metadata) -> scores (N,), a class or a factory of one"
        )
    return reward


def shapes_asset(getter: str) -> Path:
    """The path `t2i_gcpo.toy.assets.<getter>()` names, which must exist (imported lazily)."""
    try:
        assets = importlib.import_module("t2i_gcpo.toy.assets")
    except ModuleNotFoundError as err:
        if err.name != "t2i_gcpo.toy.assets":
            raise
        raise FileNotFoundError(
            f"the shapes world's assets are not available ({err}); {SHAPES_HINT}"
        ) from err
    if not hasattr(assets, getter):
        raise FileNotFoundError(f"t2i_gcpo.toy.assets has no {getter}(); {SHAPES_HINT}")
    path = Path(getattr(assets, getter)())
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist; {SHAPES_HINT}, or name a model and weights explicitly"
        )
    return path
