"""Every exception mash-hub defines is a MashError, and mash/errors.py draws every one."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

from mash import errors
from mash.errors import MashError, Rejected

# Every package the project ships or runs from the repository (the tests are not the product).
PACKAGES = (
    "adapters",
    "bench",
    "broker",
    "console",
    "faults",
    "hub",
    "mash",
    "ops",
    "restricted",
    "schemas",
    "scripts",
    "telemetry",
)


def project_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        names = [package_name] + [
            info.name for info in pkgutil.walk_packages(package.__path__, f"{package_name}.")
        ]
        for name in names:
            if name.endswith("__main__"):  # runs the command when imported
                continue
            module = importlib.import_module(name)
            for value in vars(module).values():
                if (
                    inspect.isclass(value)
                    and issubclass(value, BaseException)
                    and value.__module__ == name
                ):
                    found[f"{name}.{value.__qualname__}"] = value
    return found


def test_every_exception_the_project_defines_descends_from_mash_error() -> None:
    found = project_exceptions()
    assert len(found) > 30  # the walk reached the packages
    strays = sorted(name for name, cls in found.items() if not issubclass(cls, MashError))
    assert strays == []


def test_the_drawn_tree_names_every_exception_under_its_own_parent() -> None:
    assert errors.__doc__ is not None
    drawn = re.findall(r"^ +([│ ]*)[├└]── (\w+) +([\w.]+)", errors.__doc__, re.M)
    by_name = project_exceptions()
    placed: dict[str, str] = {}
    parents = ["MashError"]
    for indent, name, module in drawn:
        depth = len(indent) // 4
        del parents[depth + 1 :]
        placed[f"{module}.{name}"] = parents[depth]
        parents.append(name)
    assert sorted(placed) == sorted(n for n in by_name if not n.endswith(".MashError"))
    for qualified, parent in placed.items():
        assert by_name[qualified].__bases__[0].__name__ == parent, qualified


def test_a_decode_error_and_a_refused_signature_are_rejections_with_their_reason() -> None:
    from broker.signing import SignatureRefused
    from schemas.codec import DecodeError

    for refusal in (DecodeError("bad-magic", "not Avro"), SignatureRefused("unsigned", "none")):
        assert isinstance(refusal, Rejected)
    assert DecodeError("bad-magic", "not Avro").reason == "bad-magic"
    assert SignatureRefused("unsigned", "none").detail == "none"
    assert isinstance(DecodeError("bad-magic", "x"), ValueError)  # callers catch it as one


def test_rejected_stays_importable_from_the_consumer_as_the_same_type() -> None:
    from broker import consumer

    assert consumer.Rejected is Rejected
