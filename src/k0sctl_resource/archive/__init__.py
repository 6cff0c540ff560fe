"""Backup archives: what a k0s backup archive holds, and age encryption of it."""
