"""The errors of browser discovery, apart so that the browser and the page driver
share one hierarchy without importing each other."""


class DiscoveryError(RuntimeError):
    """The day's pictures could not be read from the camera page."""


class UnusableHistory(DiscoveryError):
    """The History lists pictures, none of which can be fetched (another host, an
    unknown URL form): the site changed, and reading it again would find the same."""


class BrowserUnavailable(DiscoveryError):
    """No usable Chromium or chromedriver on this machine."""


class DayNotAvailable(ValueError):
    """The page does not offer this day (in the future, disabled, or too old)."""


class PageUnreachable(DiscoveryError):
    """The camera page could not be loaded at all: refused, unresolvable, an HTTP error."""
