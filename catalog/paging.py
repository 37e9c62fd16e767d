"""Every item of a paged listing: the one way callers read a whole list, so none is cut at a page.

>>> from catalog.entities import Page
>>> pages = {None: Page((1, 2), "b"), "b": Page((3,), None)}
>>> list(every(lambda page_token, max_results: pages[page_token]))
[1, 2, 3]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from catalog.entities import Page

T = TypeVar("T")
PAGE = 1000  # the services' largest page


def every(list_page: Callable[..., Page[T]], *args: Any, **kwargs: Any) -> Iterator[T]:
    """Call `list_page(*args, page_token=..., max_results=PAGE, **kwargs)` page after page and yield
    every item, until the service says there is no next page."""
    token = None
    while True:
        page = list_page(*args, page_token=token, max_results=PAGE, **kwargs)
        yield from page
        token = page.next_page_token
        if not token:
            return
