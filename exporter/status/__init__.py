"""The status views: what a person reads when something is wrong.

``model`` reads every account's state into plain values, ``html`` renders the page,
``views`` caches the page and its JSON until the state changes and says which path
serves what, ``config`` renders the configuration in force with secrets redacted, and
``troubleshooting`` renders the troubleshooting guide shipped with the package.
"""

from exporter.status.config import render_config
from exporter.status.html import render_html
from exporter.status.model import AccountStatus, Facts, Failure, account_status
from exporter.status.troubleshooting import render_markdown, troubleshooting_page
from exporter.status.views import HTML_TYPE, JSON_TYPE, TEXT_TYPE, Page, StatusViews, render_json

__all__ = [
    "HTML_TYPE",
    "JSON_TYPE",
    "TEXT_TYPE",
    "AccountStatus",
    "Facts",
    "Failure",
    "Page",
    "StatusViews",
    "account_status",
    "render_config",
    "render_html",
    "render_json",
    "render_markdown",
    "troubleshooting_page",
]
