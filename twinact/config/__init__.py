"""The config: Hydra schemas of every group, composing `twinact/conf/` as the entry points do, and the range checks
a type cannot express.

May import: nothing in twinact but the shared `errors` and `paths`."""
