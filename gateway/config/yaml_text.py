"""A YAML syntax error as a person reads it: the file, the line and column, and what the parser expected
(PyYAML's own text names "<unicode string>" and spans several lines)."""

from __future__ import annotations

from pathlib import Path

import yaml


def yaml_error_parts(exc: yaml.YAMLError) -> tuple[int | None, str]:
    """(1-based line or None, ``not valid YAML: PROBLEM (CONTEXT at line N), column C``)."""
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return None, f"not valid YAML: {exc}"
    mark = exc.problem_mark
    text = f"not valid YAML: {exc.problem}"
    if exc.context:
        where = f" at line {exc.context_mark.line + 1}" if exc.context_mark is not None else ""
        text += f" ({exc.context}{where})"
    return mark.line + 1, f"{text}, column {mark.column + 1}"


def yaml_error_text(exc: yaml.YAMLError, path: Path) -> str:
    """``FILE:LINE: not valid YAML: ...``."""
    line, text = yaml_error_parts(exc)
    return f"{path}:{line}: {text}" if line else f"{path}: {text}"
