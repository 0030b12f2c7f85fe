"""Tests of mobile.sync: revision trees, the store, replication against pouchdb-server."""
