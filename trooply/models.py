"""Every SQL table, imported in one place for Alembic and for `create_all` in tests."""

from trooply.catalog.models import IngestItem, IngestJob, ProductRecord
from trooply.search.models import SearchLog
from trooply.tenancy.models import ApiKey, Tenant

__all__ = ["ApiKey", "IngestItem", "IngestJob", "ProductRecord", "SearchLog", "Tenant"]
