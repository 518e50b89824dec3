"""Queries in; ranked and grouped hits out: the query language, scoring, filters and the
optional reranker."""
