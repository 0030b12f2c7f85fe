"""The order-generation rules: pure functions from facts (plain dataclasses) and the policy to decisions.

No database, no clock: `server.orders.facts` gathers the facts with set-based SQL and
`server.orders.generation` applies the decisions, so each rule can be tested on hand-made facts.
"""
