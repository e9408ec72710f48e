"""One error tree: every exception class Newsroom defines derives from NewsroomError
(newsroom/errors.py), so a caller — the command line's last guard among them — can tell
Newsroom's own refusals ("what is wrong, what to do") from a bug. Private classes used for
control flow inside one module (a leading underscore, or a BaseException that is not an
error) are not errors anyone catches from outside."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from newsroom.errors import NewsroomError

PACKAGES = ("newsroom", "flows", "tasks")


def _modules():
    for name in PACKAGES:
        package = importlib.import_module(name)
        yield package
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
            if not info.name.endswith(".__main__"):  # runs a command when imported
                yield importlib.import_module(info.name)


def test_every_public_exception_class_is_a_newsroom_error():
    outside = []
    seen = 0
    for module in _modules():
        for name, value in vars(module).items():
            if (not inspect.isclass(value) or value.__module__ != module.__name__
                    or not issubclass(value, Exception)):
                continue
            seen += 1
            if name.startswith("_") or issubclass(value, NewsroomError):
                continue
            outside.append(f"{module.__name__}.{name} ({value.__mro__[1].__name__})")
    assert seen > 20  # the walk found the tree
    assert not outside, ("exception classes outside the NewsroomError tree (derive from "
                         "NewsroomError, and from the builtin too if callers catch it):\n  "
                         + "\n  ".join(outside))
