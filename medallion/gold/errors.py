"""The one exception the gold planners (plan.py, delta.py) raise for a construct they cannot follow."""


class Untraceable(Exception):
    """A construct the incremental plan cannot follow: the mart is built in full (plan.py) or,
    for the delta plan (delta.py), its touched groups are recomputed."""
