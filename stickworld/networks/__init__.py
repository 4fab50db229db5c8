"""The networks: the base text-to-image model's architecture, the judges that read a pose and an actor back, the
StickWorld CLIP and the judges as an action encoder. May import :mod:`stickworld.world` only."""
