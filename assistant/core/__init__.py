"""Core: the types every layer shares, settings (the only reader of the environment), the lazy-import
registry and the error hierarchy. Depends on nothing else in refdesk."""
