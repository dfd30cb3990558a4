"""The analytics retention sweep: raw search log rows and events older than TROOPLY_ANALYTICS_RAW_RETENTION_DAYS
are dropped (every one was added to the aggregated counters when it was written, so nothing is lost to the
reports), and counters older than TROOPLY_ANALYTICS_RETENTION_DAYS go too. Batched and idempotent."""

import logging
from datetime import timedelta

from trooply.analytics.counting import epoch_hour
from trooply.analytics.repository import AnalyticsRetention
from trooply.config import AnalyticsSettings
from trooply.db import Database, utcnow
from trooply.feedback.repository import FeedbackMaintenance

log = logging.getLogger(__name__)
RETENTION_SWEEP_SECONDS = 3600.0
BATCH_ROWS = 5000


class RetentionSweep:
    def __init__(self, db: Database, settings: AnalyticsSettings, batch_rows: int = BATCH_ROWS) -> None:
        self.db = db
        self.raw_retention = timedelta(days=settings.raw_retention_days)
        self.retention = timedelta(days=settings.retention_days)
        self.batch_rows = batch_rows

    def run(self) -> int:
        """Drops what is past retention; the number of rows dropped."""
        now = utcnow()
        dropped = 0
        while True:  # a batch per transaction: a long backlog never holds the write lock for long
            with self.db.session() as session:
                batch = FeedbackMaintenance(session).drop_raw_before(now - self.raw_retention, self.batch_rows)
            dropped += batch
            if batch < self.batch_rows:
                break
        with self.db.session() as session:
            dropped += AnalyticsRetention(session).drop_counters_before(epoch_hour(now - self.retention))
        if dropped:
            log.info("analytics retention dropped %d rows", dropped)
        return dropped
