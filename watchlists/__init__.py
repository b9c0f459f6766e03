"""Watchlists: a trader's named, ordered lists of symbols."""
