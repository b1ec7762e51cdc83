"""Entry points for schedulers.

``CRON_SCHEDULE`` is recon's schedule, one line for all three ways of running it
(docs/scheduling.md): a crontab line, the GitHub Actions workflow
(``.github/workflows/scheduled-sync.yml``) and the Dagster schedule of ``dagster_defs``
(the optional ``dagster`` extra).  Tests check that the three agree.
"""

# Daily at 05:17 UTC: off the hour, when shared CI runners and the APIs are busiest.
CRON_SCHEDULE = "17 5 * * *"
