"""Code shared by the Stripe and HubSpot dlt sources: strict typed columns, Arrow, quarantine."""
