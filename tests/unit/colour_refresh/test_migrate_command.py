"""`trooply migrate` begins the colour refresh of catalogues stored by the old colour signal, once."""

from trooply.catalog.models import INDEXED, ProductRecord
from trooply.cli import main
from trooply.colour_refresh.service import ColourRefreshService
from trooply.config import Settings
from trooply.db import Database
from trooply.tenancy.service import TenantService


def test_migrate_begins_the_colour_refresh_of_indexed_catalogues_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TROOPLY_DATA_DIR", str(tmp_path))
    assert main(["migrate"]) == 0
    assert "colour refresh" not in capsys.readouterr().out  # no catalogue yet
    db = Database(Settings().sql_url)
    try:
        tenants = TenantService(db)
        shop, empty = tenants.create_tenant("shop", "free").tenant_id, tenants.create_tenant("empty", "free").tenant_id
        with db.session() as session:
            session.add_all(ProductRecord(tenant_id=shop, id=f"p{i}", image_url=f"http://127.0.0.1:9/{i}.png", meta={},
                                          status=INDEXED) for i in range(3))
        assert main(["migrate"]) == 0
        out = capsys.readouterr().out
        assert "colour refresh of 1 tenant(s), 3 products, begun for the next `trooply serve`" in out
        status = ColourRefreshService(db, None).status()
        assert [(t.tenant_id, t.status, t.total) for t in status.tenants] == [(shop, "pending", 3)]
        assert empty not in {t.tenant_id for t in status.tenants}
        assert main(["migrate"]) == 0
        assert "colour refresh" not in capsys.readouterr().out  # begun already: not again
    finally:
        db.close()
