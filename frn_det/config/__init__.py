from .defaults import add_frn_config, apply_frn_options, frn_options_of
