"""Runtime pieces every service uses: database and transactions, outbox relay,
inbox (idempotent handlers), event subscription with dead-lettering, RPC contracts,
working-day arithmetic."""
