"""Settings per environment: base (shared), dev, test and prod; all values come from the environment."""
