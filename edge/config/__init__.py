"""The site config: one pydantic tree loaded from ``site.yaml``."""

from edge.config.loader import load_site, parse_site
from edge.config.site import SiteConfig

__all__ = ["SiteConfig", "load_site", "parse_site"]
