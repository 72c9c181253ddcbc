"""Cluster tests: RedisBackplane and Publisher against real server processes and a real redis-server."""
