"""The shared front door: users, roles and tokens; HTTP JSON over the agencies' RPC."""
