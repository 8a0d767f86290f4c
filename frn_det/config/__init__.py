from .defaults import add_frn_config
