"""The webhook receiver (``recon webhooks serve``) and its durable spool, which
``recon ingest`` drains: see :mod:`recon.webhooks.spool` for the consumer API."""
