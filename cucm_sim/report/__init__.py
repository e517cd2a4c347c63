"""Everything a person reads: result files and how they are written safely (`files`), the narrative, the
figures (matplotlib stays here), number formats."""
