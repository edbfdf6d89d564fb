"""Side-by-side measurements of phospho-embed against what users have; run ``make bench``."""
