"""RQ cron configuration: one entry, the tick, every 60 seconds.

Run it with `flask --app wsgi cadence cron` (uses the app's Redis, embedded or
REDIS_URL) or `rq cron cadence.cron --url $REDIS_URL`. Business cadences are
RRULEs in the database, never cron strings here. A short ttl drops ticks that
sat in the queue too long; running two cron schedulers only enqueues extra
ticks, which the tick's idempotence makes harmless.
"""

from rq import cron

from cadence.jobs import tick
from cadence.queues import queue_name
from config import Config

cron.register(tick, queue_name=queue_name("cadence", Config.RQ_QUEUE_PREFIX), interval=60, ttl=50, result_ttl=600)
