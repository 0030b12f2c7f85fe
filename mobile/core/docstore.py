"""What the view models need from the local store (`mobile.sync.Store` satisfies it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

Doc = dict[str, Any]


class DocStore(Protocol):
    """The slice of `mobile.sync.Store` the app's logic uses."""

    @property
    def update_seq(self) -> int:
        """Sequence of the latest local change."""
        ...

    def put(self, doc: Mapping[str, Any]) -> str:
        """Write a new document revision."""
        ...

    def get(self, doc_id: str) -> Doc:
        """The winning revision of a document (raises when missing)."""
        ...

    def all_docs(self, *, include_docs: bool = False, prefix: str | None = None) -> list[Doc]:
        """Rows of live documents by id."""
        ...

    def changes(
        self, since: int | str = 0, *, limit: int | None = None, include_docs: bool = False
    ) -> tuple[list[Doc], int]:
        """Changed documents after `since`."""
        ...
