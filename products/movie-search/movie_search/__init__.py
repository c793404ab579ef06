"""Movie Search Bot: indexes film posts of blog sites and finds them by title.

Importing the package (and :mod:`movie_search.checks`, :mod:`movie_search.sources`,
:mod:`movie_search.index`) needs no aiogram; only :mod:`movie_search.bot` does.
"""
