from support.fixtures import *  # noqa: F403 (the plugin's old name, until addopts says -p support.fixtures)
