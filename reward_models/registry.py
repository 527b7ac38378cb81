"""Find a reward by the name a config gives it, and build it with the config's keyword arguments.

A name is looked up, in order, as
1. a reward registered in code with `register_reward` ("clip", "aesthetic", ...),
2. `path/to/file.py:attr` (a Python file, relative to the working directory),
3. `package.module:attr` (an importable module),
4. a name published by an installed package under the entry-point group "t2i_gcpo.rewards"
   (this is how the shapes world registers "shapes-clip", "shapes-aesthetic", "shapes-oracle").

What the name refers to becomes a reward by one rule (`build_reward`):
- a function whose first two parameters are required positional ones and that also takes the
  metadata, as `fn(images, prompts, metadata)` or `fn(images, prompts, metadata=...)`, is the
  reward itself: `(images, prompts, metadata)`, `(images, prompts, metadata=None)`,
  `(images, prompts, **kwargs)` and `(images, prompts, metadata, **kwargs)` all qualify; the
  config's keyword arguments are bound to its other parameters;
- a class, or any other function that can be called with the config's keyword arguments
  alone, is a factory: it is called with them and must return a reward;
- any other callable object is used as it is;
- anything else is a one-line error that states the contract.
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

from reward_models.base import RewardError, RewardFn, wants_pil

ENTRY_POINT_GROUP = "t2i_gcpo.rewards"
CONTRACT = (
    "a reward is fn(images, prompts, metadata) -> N scores (metadata may be a keyword "
    "argument or come through **kwargs), or a class / factory that returns one"
)
ACCEPTED_FORMS = (
    "a registered name (e.g. 'clip')",
    "'path/to/file.py:attr'",
    "'package.module:attr'",
    f"a name published under the entry-point group {ENTRY_POINT_GROUP!r}",
)


class PluginRegistry:
    """Names -> objects of one kind: registered in code with `register`, or published by
    installed packages under the entry-point group `group` (loaded on first use).

    Registering the same definition again (a reloaded module, a re-run notebook cell) replaces
    it; another definition under a taken name is an error.
    """

    def __init__(self, kind: str, group: str) -> None:
        self.kind, self.group = kind, group
        self.registered: dict[str, Any] = {}

    def register(self, name: str, target: Any = None) -> Any:
        """Register `target` as `name`; without `target`, a decorator that does so."""
        if target is None:
            return lambda obj: self.register(name, obj)
        old = self.registered.get(name)
        if old is not None and _qualified(old) != _qualified(target):
            raise ValueError(
                f"{self.kind} name {name!r} is already registered to {_qualified(old)}; "
                f"cannot register {_qualified(target)} under it"
            )
        self.registered[name] = target
        return target

    def published(self) -> dict[str, list[importlib.metadata.EntryPoint]]:
        """Entry-point name -> the installed packages' entry points of that name."""
        found: dict[str, list[importlib.metadata.EntryPoint]] = {}
        for point in importlib.metadata.entry_points(group=self.group):
            if all(point.value != other.value for other in found.get(point.name, [])):
                found.setdefault(point.name, []).append(point)
        return found

    def names(self) -> list[str]:
        """Every name this registry can resolve, sorted."""
        return sorted(set(self.registered) | set(self.published()))

    def get(self, name: str) -> Any | None:
        """The object registered or published as `name`, or None."""
        if name in self.registered:
            return self.registered[name]
        points = self.published().get(name)
        if not points:
            return None
        if len(points) > 1:
            raise ValueError(
                f"{self.kind} {name!r} is published by several installed packages under "
                f"{self.group!r}: {sorted(p.value for p in points)}; uninstall one"
            )
        return points[0].load()


REWARDS = PluginRegistry("reward", ENTRY_POINT_GROUP)
"""The rewards known by name: the built-ins, `register_reward`, and installed plug-ins."""


class RewardNotFoundError(RewardError):
    """A reward name that none of the accepted forms resolves."""


def register_reward(name: str) -> Callable[[Callable[..., RewardFn]], Callable[..., RewardFn]]:
    """Decorator: make a reward (a function, class or factory) loadable as `name`."""
    return REWARDS.register(name)


def _qualified(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def load_reward(name: str, **kwargs: Any) -> RewardFn:
    """Resolve `name` (see the module docstring) and build the reward with `kwargs`; the
    result is always called as reward(images, prompts, metadata)."""
    return build_reward(name, resolve_reward(name), kwargs)


def resolve_reward(name: str) -> Any:
    """The object that `name` refers to: a registered reward, a file or module attribute, or
    an entry point's target. Raises RewardNotFoundError listing what was tried."""
    if not isinstance(name, str) or not name:
        raise RewardNotFoundError(f"a reward name must be a non-empty string; got {name!r}")
    if name in REWARDS.registered:
        return REWARDS.registered[name]
    tried = [f"registered rewards {sorted(REWARDS.registered)}: no such name"]
    source, colon, attr = name.rpartition(":")
    if colon and source.endswith(".py"):
        return _attr_from_file(name, source, attr, tried)
    if colon:
        return _attr_from_module(name, source, attr, tried)
    try:
        target = REWARDS.get(name)
    except ValueError as err:
        raise RewardError(str(err)) from err
    if target is None:
        published = sorted(REWARDS.published())
        tried.append(f"entry points in group {ENTRY_POINT_GROUP!r} {published}: no such name")
        raise _not_found(name, tried)
    return target


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


# -- which callables are rewards ------------------------------------------------------------

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _signature(fn: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


def metadata_style(fn: Any) -> str | None:
    """How `fn` takes a reward call: "positional" (fn(images, prompts, metadata)), "keyword"
    (fn(images, prompts, metadata=...)), or None when it cannot take (images, prompts,
    metadata). A callable whose signature cannot be read is taken as "positional"."""
    signature = _signature(fn)
    if signature is None:
        return "positional"
    for style, args, kwargs in (
        ("positional", (None, None, None), {}),
        ("keyword", (None, None), {"metadata": None}),
    ):
        try:
            signature.bind(*args, **kwargs)
        except TypeError:
            continue
        return style
    return None


def is_reward_function(fn: Callable) -> bool:
    """True when `fn` is a reward rather than a factory: its first two parameters are required
    positional ones (images, prompts) and it takes the metadata too (see metadata_style)."""
    signature = _signature(fn)
    if signature is None:
        return False
    head = list(signature.parameters.values())[:2]
    required = len(head) == 2 and all(
        p.kind in _POSITIONAL and p.default is inspect.Parameter.empty for p in head
    )
    return required and metadata_style(fn) is not None


class _MetadataAsKeyword:
    """A reward that takes the metadata only as a keyword, called the positional way."""

    def __init__(self, fn: Callable) -> None:
        self.fn = fn
        self.wants_pil = wants_pil(fn)
        functools.update_wrapper(self, fn, assigned=("__module__", "__name__", "__qualname__"))

    def __call__(self, images: Any, prompts: Any, metadata: Any) -> Any:
        return self.fn(images, prompts, metadata=metadata)


def as_positional_reward(name: str, reward: Any) -> RewardFn:
    """`reward` callable as reward(images, prompts, metadata), or RewardError stating the
    contract when it cannot take those arguments."""
    if not callable(reward):
        raise RewardError(f"reward {name!r} is a {type(reward).__name__}, not callable; {CONTRACT}")
    style = metadata_style(reward)
    if style is None:
        raise RewardError(
            f"reward {name!r}: {_describe_callable(reward)} cannot take (images, prompts, "
            f"metadata); {CONTRACT}"
        )
    return reward if style == "positional" else _MetadataAsKeyword(reward)


def _describe_callable(fn: Any) -> str:
    signature = _signature(fn)
    label = getattr(fn, "__qualname__", type(fn).__name__)
    return f"{label}{signature}" if signature is not None else label


def _bind_kwargs(name: str, fn: Callable, kwargs: dict, *leading: Any) -> None:
    """Raise RewardError when `fn` cannot take `kwargs` (after `leading` positional arguments)."""
    signature = _signature(fn)
    if signature is None:
        return
    try:
        signature.bind_partial(*leading, **kwargs)
    except TypeError as err:
        raise RewardError(
            f"reward {name!r}: keyword arguments {sorted(kwargs)} do not fit "
            f"{_describe_callable(fn)} ({err})"
        ) from err


def _factory_call_error(fn: Callable, kwargs: dict) -> str | None:
    """Why fn(**kwargs) does not bind (a missing or unexpected argument), or None if it does."""
    signature = _signature(fn)
    if signature is None:
        return None
    try:
        signature.bind(**kwargs)
    except TypeError as err:
        return str(err)
    return None


def build_reward(name: str, target: Any, kwargs: dict[str, Any]) -> RewardFn:
    """Turn what a name resolved to into a reward callable (the rule is in the module doc)."""
    function_like = inspect.isfunction(target) or inspect.ismethod(target)
    function_like = function_like or isinstance(target, functools.partial)
    if function_like and is_reward_function(target):
        if metadata_style(target) == "positional":
            _bind_kwargs(name, target, kwargs, None, None, None)
        elif "metadata" in kwargs:
            raise RewardError(f"reward {name!r}: 'metadata' cannot be a keyword argument")
        else:
            _bind_kwargs(name, target, {"metadata": None, **kwargs}, None, None)
        reward = functools.partial(target, **kwargs) if kwargs else target
        if kwargs and wants_pil(target):
            reward.wants_pil = True
        return as_positional_reward(name, reward)
    if function_like and (why := _factory_call_error(target, kwargs)) is not None:
        raise RewardError(
            f"reward {name!r}: {_describe_callable(target)} cannot take (images, prompts, "
            f"metadata), and as a factory it cannot be called with keyword arguments "
            f"{sorted(kwargs)} ({why}); {CONTRACT}"
        )
    if inspect.isclass(target) or function_like:
        _bind_kwargs(name, target, kwargs)
        return as_positional_reward(name, target(**kwargs))
    if kwargs:
        raise RewardError(
            f"reward {name!r} is an already-built {type(target).__name__}; it takes no keyword "
            f"arguments, got {sorted(kwargs)}"
        )
    return as_positional_reward(name, target)
