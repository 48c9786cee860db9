"""Re-ranking: diversity (MMR), creator debunching, topic caps, exploration slots, cold-start slots."""
