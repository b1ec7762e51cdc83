"""recon: reconcile Stripe billing with HubSpot, and fix HubSpot where it is wrong."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("recon")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
