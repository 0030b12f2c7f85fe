"""Curbstop server: CouchDB provisioning, order publisher and result follower."""
