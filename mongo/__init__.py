"""MongoDB storage, one module per aggregate: its documents and every query made on them."""
