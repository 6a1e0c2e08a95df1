"""The live slot board: a page on 127.0.0.1 showing every limit's lanes fill and empty."""
