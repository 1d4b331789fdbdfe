"""Running an audit: the audit pipeline, sessions, vantage merging, imported scans."""
