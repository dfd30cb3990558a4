"""Every SQL table, imported in one place for Alembic and for `create_all` in tests."""

from trooply.analytics.models import ProductDay, QueryDay, RevenueBucket, SearchBucket
from trooply.catalog.models import IngestItem, IngestJob, ProductRecord
from trooply.colour_refresh.models import ColourRefresh, ColourRefreshFailure
from trooply.duplicates.models import DuplicateScan
from trooply.feedback.models import FeedbackEvent
from trooply.feeds.models import Feed, FeedProduct, FeedSync
from trooply.model_migration.models import MigrationFailure, ModelStateRow, TenantMigration
from trooply.ranking.models import RuleRecord
from trooply.search.models import SearchLog
from trooply.tenancy.models import AllowedOrigin, ApiKey, Tenant, UsageCounter

__all__ = ["AllowedOrigin", "ApiKey", "ColourRefresh", "ColourRefreshFailure", "DuplicateScan", "Feed",
           "FeedProduct", "FeedSync", "FeedbackEvent", "IngestItem", "IngestJob", "MigrationFailure", "ModelStateRow",
           "ProductDay", "ProductRecord", "QueryDay", "RevenueBucket", "RuleRecord", "SearchBucket", "SearchLog",
           "TenantMigration", "Tenant", "UsageCounter"]
