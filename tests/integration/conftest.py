"""The shop factory: each module opens the shops it needs, and they close when the module is done."""

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Protocol

import pytest

from tests.support.shop import Product, Shop, open_shop


class ShopFactory(Protocol):
    def __call__(self, catalogues: dict[str, list[Product]], *, data_dir: Path | None = None,
                 **options: Any) -> Shop: ...


@pytest.fixture(scope="module")
def shop_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShopFactory]:
    """`shop_factory({"shop": products, "stranger": []}, images={"/red.png": png})`: see `open_shop`."""
    with ExitStack() as opened:
        def stocked(catalogues: dict[str, list[Product]], *, data_dir: Path | None = None, **options: Any) -> Shop:
            return opened.enter_context(open_shop(data_dir or tmp_path_factory.mktemp("shop"), catalogues,
                                                  **options))
        yield stocked
