"""Access control: librarian accounts and sessions, API keys, the audit log, and the HTTP guard."""
