"""The lowest versions pyproject.toml allows, for CI's lowest-versions run.

    python .ci/floors.py extras --except bench       the extras to install: test,mqtt,...
    python .ci/floors.py constraints --except bench  a pip constraints file: name==floor
    python .ci/floors.py check --except bench        exit 1 unless each is installed at its floor

The floors are the lower bounds (``>=``, ``~=``, ``==``) of every direct
dependency: the project's own and those of each extra not named after
``--except``. A dependency without a lower bound is an error, since its floor
cannot be tested, and so are two groups that give one package different floors.
Needs ``packaging`` and ``tomllib`` (``tomli`` before Python 3.11),
which pytest brings into any venv with the test extra.
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def direct_requirements(
    project: dict[str, Any], extras: list[str]
) -> list[tuple[str, Requirement]]:
    """(where, requirement) for the project's dependencies and those of each extra."""
    found = [("dependencies", Requirement(line)) for line in project.get("dependencies", [])]
    groups = project.get("optional-dependencies", {})
    for extra in extras:
        found += [(f"[{extra}]", Requirement(line)) for line in groups[extra]]
    return found


def lower_bound(requirement: Requirement) -> Version | None:
    """The lowest version the requirement allows, or None when it has no lower bound."""
    bounds = [
        Version(spec.version)
        for spec in requirement.specifier
        if spec.operator in {">=", "~=", "=="} and "*" not in spec.version
    ]
    return max(bounds, default=None)


def floors(
    found: list[tuple[str, Requirement]],
) -> tuple[dict[NormalizedName, tuple[Version, str]], list[str]]:
    """Each package's floor and where it comes from; and what is wrong with the floors."""
    result: dict[NormalizedName, tuple[Version, str]] = {}
    problems: list[str] = []
    for where, requirement in found:
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue  # not for this interpreter or platform
        bound = lower_bound(requirement)
        if bound is None:
            problems.append(f"{requirement} in {where}: no lower bound to test")
            continue
        name = canonicalize_name(requirement.name)
        if name in result and result[name][0] != bound:
            # Installed together, the lower of the two would never be tested.
            first, first_where = result[name]
            problems.append(f"{name}: floor {first} in {first_where} but {bound} in {where}")
        result.setdefault(name, (bound, where))
    return result, problems


def installed_version(name: str) -> Version | None:
    """The version installed in this interpreter's environment, or None."""
    try:
        return Version(metadata.version(name))
    except metadata.PackageNotFoundError:
        return None


def main() -> int:
    """Run the command; the exit status is the verdict."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("command", choices=["extras", "constraints", "check"])
    parser.add_argument("--except", dest="untested", nargs="*", default=[], metavar="EXTRA")
    args = parser.parse_args()
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    groups = project.get("optional-dependencies", {})
    extras = [name for name in groups if name not in args.untested]
    if args.command == "extras":
        print(",".join(extras))
        return 0

    found, problems = floors(direct_requirements(project, extras))
    if problems:
        print("floors: pyproject.toml", *problems, sep="\n  ", file=sys.stderr)
        return 1
    if args.command == "constraints":
        print(f"# The floors of pyproject.toml's dependencies and of [{','.join(extras)}]")
        for name, (version, _) in sorted(found.items()):
            print(f"{name}=={version}")
        return 0

    wrong = []
    for name, (version, where) in sorted(found.items()):
        have = installed_version(name)
        print(f"  {name:<20} {where:<14} floor {version!s:<12} installed {have}")
        if have != version:
            wrong.append(name)
    if wrong:
        print(f"floors: not installed at their floor: {', '.join(wrong)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
