"""A path parameter that is any text, newlines included: the ``text`` convertor.

Starlette's ``path`` convertor is ``.*`` inside ``^...$``: ``.`` does not match a
newline and ``$`` also matches before a final one, so ``/v1/customers/%0A`` reached the
360 as the empty id (a 422 about its length) instead of the id ``"\\n"`` (a 404).
Customer ids are arbitrary strings, so their routes use ``{customer_id:text}``.
"""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor

__all__ = ["AnyTextConvertor"]


class AnyTextConvertor(Convertor[str]):
    regex = "(?s:.+)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return str(value)


register_url_convertor("text", AnyTextConvertor())
