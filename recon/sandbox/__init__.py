"""The Stripe + HubSpot sandbox (an HTTP server on loopback) and its world generator."""
