"""The control plane: DPoP proofs (dpop.py), the heartbeat classifier (classify.py), the client
(client.py) and the reference server (server.py, `loopctl controlplane serve`)."""
