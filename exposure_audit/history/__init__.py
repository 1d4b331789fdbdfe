"""What outlives a run: the history store, accepted risks, notifications, schedules."""
