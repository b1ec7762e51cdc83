"""The reverse-ETL push of validated corrections to HubSpot (see ``recon.sync.run``)."""

from recon.sync.run import SyncOptions, SyncRefused, SyncReport, run_sync

__all__ = ["SyncOptions", "SyncRefused", "SyncReport", "run_sync"]
