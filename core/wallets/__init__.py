"""Money: the ledger (the one place money moves), wallets, transfers and their claims,
deposits from mobile money, operator adjustments and sandbox buyers."""
