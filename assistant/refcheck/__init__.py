"""Reference checker: does the library hold the works a (possibly made-up) reference list cites?"""
