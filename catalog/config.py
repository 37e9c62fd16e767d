"""Where the embedded metastore lives and who is acting, from the environment and flags."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path
    metastore_url: str
    principal: str | None

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse"


def load(home: str | os.PathLike[str] | None = None, url: str | None = None, principal: str | None = None) -> Settings:
    """Flags win over `CAIRN_HOME`, `CAIRN_METASTORE_URL` and `CAIRN_PRINCIPAL`; then defaults."""
    root = Path(home or os.environ.get("CAIRN_HOME") or "./.cairn").expanduser().resolve()
    metastore_url = url or os.environ.get("CAIRN_METASTORE_URL") or f"sqlite:///{root / 'metastore.db'}"
    return Settings(root, metastore_url, principal or os.environ.get("CAIRN_PRINCIPAL") or None)
