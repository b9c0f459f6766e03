"""The demo's users, named once: the seed creates them, the contexts' demo data funds them, `make run` names them."""
DEMO_STAFF_EMAIL = "staff@brokerx.example"
DEMO_TRADER_EMAIL = "trader@brokerx.example"
