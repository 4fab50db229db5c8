"""The gates each shipped network must meet, and the diagnostics behind them: the base model's quality, the judges'
and the CLIP's. May import :mod:`stickworld.world`, :mod:`stickworld.networks` and :mod:`stickworld.protocol`."""
