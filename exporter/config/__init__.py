"""The configuration: a YAML file read into frozen settings.

Every problem is reported as ``<file>: <key path>: <what is wrong>``, every problem of
a file at once, and no secret is ever echoed back. ``loader`` reads a file,
``settings`` defines the keys, ``values`` checks single values, ``keys`` says how a
key is defined and read, ``secret`` holds the usertoken, ``files`` reads the files a
configuration names without letting them stall the process, ``units`` parses
durations and sizes, and ``yamlreader`` is the YAML reading shared with the web config.
"""

from exporter.config.keys import ConfigError
from exporter.config.loader import MAX_CONFIG_FILE_SIZE, load_config, parse_config
from exporter.config.secret import FileSecret, Secret
from exporter.config.settings import AccountConfig, Settings
from exporter.config.units import format_duration, format_size, parse_duration, parse_size
from exporter.config.values import GROUPINGS, REQUEST_TYPES, Selector, placeholder_problem

__all__ = [
    "GROUPINGS",
    "MAX_CONFIG_FILE_SIZE",
    "REQUEST_TYPES",
    "AccountConfig",
    "ConfigError",
    "FileSecret",
    "Secret",
    "Selector",
    "Settings",
    "format_duration",
    "format_size",
    "load_config",
    "parse_config",
    "parse_duration",
    "parse_size",
    "placeholder_problem",
]
