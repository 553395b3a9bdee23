"""Server-generated text in the user's language: translation tables with zh and en for every message
the gateway writes for people (alarm messages, stream faults, scene parameter labels, captions, errors
a user can cause).

A table is a module of this package with ``TEXT = {key: {"zh": ..., "en": ...}}`` and is registered in
``TABLES`` below; ``t(key, lang, **params)`` formats the entry with ``str.format`` (missing language:
English; missing key: the key itself, so a forgotten entry shows up instead of vanishing).

The language of a request: ``?lang=`` or the Accept-Language header (the console sends its own
setting), else the site's language (``site.language``). The API sets it for each request
(``use_lang``), so code that words text for the current user calls ``current_lang()`` instead of
passing the language through every function (it survives ``asyncio.to_thread``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal, cast

from gateway.i18n import cameras, config, config_check, enrolment, errors, models, requests, scenes

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")
DEFAULT_LANG: Lang = "zh"

TABLES: tuple[Mapping[str, Mapping[str, str]], ...] = (
    cameras.TEXT,
    config.TEXT,
    config_check.TEXT,
    enrolment.TEXT,
    errors.TEXT,
    models.TEXT,
    requests.TEXT,
    scenes.TEXT,
)
TEXT: dict[str, Mapping[str, str]] = {}
for _table in TABLES:
    for _key, _entry in _table.items():
        if _key in TEXT:
            raise RuntimeError(f"translation key {_key!r} is defined twice")
        TEXT[_key] = _entry


def t(key: str, lang: str = DEFAULT_LANG, /, **params: object) -> str:
    """The text of ``key`` in ``lang`` with ``params`` filled in."""
    entry = TEXT.get(key)
    if entry is None:
        return key
    template = entry.get(lang) or entry.get("en") or key
    try:
        return template.format(**params)
    except (KeyError, IndexError, ValueError):
        return template


def has(key: str) -> bool:
    return key in TEXT


def lang_of(header: str | None, default: str = DEFAULT_LANG) -> Lang:
    """The first of zh/en an Accept-Language header (or a plain "zh"/"en") asks for; else ``default``."""
    for part in (header or "").split(","):
        tag = part.split(";")[0].strip().lower()
        for lang in LANGS:
            if tag == lang or tag.startswith(lang + "-"):
                return lang
    return cast(Lang, default) if default in LANGS else DEFAULT_LANG


_CURRENT: ContextVar[Lang | None] = ContextVar("vigil_lang", default=None)


def current_lang(default: str | None = None) -> Lang | None:
    """The language of the request being served; ``default`` (or None) outside a request."""
    lang = _CURRENT.get()
    if lang is not None:
        return lang
    return cast(Lang, default) if default in LANGS else None


@contextmanager
def use_lang(lang: Lang) -> Iterator[None]:
    """Word server text in ``lang`` within this block (and the threads it starts with to_thread)."""
    token = _CURRENT.set(lang)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def t_request(key: str, /, **params: object) -> str:
    """The text of ``key`` in the language of the request being served (English outside a request or
    when the client asks for none)."""
    return t(key, current_lang() or "en", **params)
