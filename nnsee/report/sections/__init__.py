"""One module per report section; each returns a plain dict of strings and numbers for the template."""
