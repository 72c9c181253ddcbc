"""The sans-I/O core: frames, the frame parser, handshake checks, rate limits.

Nothing in this package touches sockets, threads or clocks; it turns bytes into
frames and decisions, and frames into bytes.
"""
