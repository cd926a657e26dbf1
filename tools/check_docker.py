#!/usr/bin/env python3
"""Checks docker/ without a Docker engine: compose.yaml parses and names what each service needs,
every Dockerfile line is a known instruction whose COPY sources exist in the repository, and the
build copies every workspace member (cargo refuses a workspace with a member missing)."""
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
                "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}


def check_dockerfile(path):
    errors = []
    continued = False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continued = False if not stripped else continued
            continue
        if not continued:
            word = stripped.split()[0].upper()
            if word not in INSTRUCTIONS:
                errors.append(f"{path.name}:{number}: unknown instruction {word}")
            if word == "COPY" and "--from=" not in stripped:
                for source in stripped.split()[1:-1]:
                    if not (ROOT / source).exists():
                        errors.append(f"{path.name}:{number}: COPY source {source} does not exist")
        continued = stripped.endswith("\\")
    return errors


def check_members(path):
    copied = set()
    for line in path.read_text().splitlines():
        words = line.split()
        if words and words[0].upper() == "COPY" and "--from=" not in line:
            copied.update(words[1:-1])
    manifest = (ROOT / "Cargo.toml").read_text()
    members = re.search(r"^members\s*=\s*\[(.*?)\]", manifest, re.M | re.S)
    names = re.findall(r'"([^"]+)"', members.group(1)) if members else []
    return [f"{path.name}: workspace member {name} is never copied" for name in names if name not in copied]


def check_compose(path):
    errors = []
    doc = yaml.safe_load(path.read_text())
    services = doc.get("services") or {}
    for name in ("proxy", "control-plane", "worker", "postgres", "redis"):
        if name not in services:
            errors.append(f"compose.yaml: service {name} is missing")
    for name, service in services.items():
        if "image" not in service and "build" not in service:
            errors.append(f"compose.yaml: service {name} has neither image nor build")
    text = path.read_text()
    for variable in re.findall(r"\$\{([A-Z_]+)", text):
        if not re.fullmatch(r"[A-Z][A-Z0-9_]*", variable):
            errors.append(f"compose.yaml: odd variable {variable}")
    return errors


def main():
    dockerfile = ROOT / "docker" / "Dockerfile"
    errors = check_dockerfile(dockerfile) + check_members(dockerfile) + check_compose(ROOT / "docker" / "compose.yaml")
    for error in errors:
        print(error)
    if errors:
        return 1
    print("docker files look well-formed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
