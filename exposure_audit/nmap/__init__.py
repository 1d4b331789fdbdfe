"""Everything nmap: the scanner that runs it, the XML parser, its version database."""
